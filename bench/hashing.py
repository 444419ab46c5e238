"""Hashing speed for model identity: MB/s per algorithm on one multi-GB file, warm and cold page cache.

    .venv/bin/python bench/hashing.py [--size-gib 2] [--dir /tmp]

The baseline is sha1 measured in the same run; every line prints its ratio to it. "cold" drops the
file from the page cache with posix_fadvise(POSIX_FADV_DONTNEED) before each pass (it works without
root for a file we wrote and fsynced). imohash reads only the size and three 16 KiB samples, so its
"speed" is not a throughput: it is the cost of the change check on sync.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import blake3
import imohash

CHUNK = 8 * 1024 * 1024


def _stream(factory: Callable[[], object]) -> Callable[[Path], str]:
    def run(path: Path) -> str:
        h = factory()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)  # type: ignore[attr-defined]
        return str(h.hexdigest())  # type: ignore[attr-defined]

    return run


def _blake3_mmap(path: Path) -> str:
    return str(blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap(path).hexdigest())


ALGORITHMS: dict[str, Callable[[Path], str]] = {
    "sha1": _stream(hashlib.sha1),
    "sha256": _stream(hashlib.sha256),
    "blake3 (1 thread, what install uses)": _stream(blake3.blake3),
    "blake3 (mmap, all threads)": _blake3_mmap,
    "imohash (size + 3 x 16 KiB)": lambda p: str(imohash.hashfile(str(p), hexdigest=True)),
}


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def measure(fn: Callable[[Path], str], path: Path, cold: bool) -> float:
    if cold:
        drop_cache(path)
    else:
        fn(path)  # warm the cache with a first pass
    start = time.perf_counter()
    fn(path)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    size = int(args.size_gib * 1024**3)
    path = args.dir / "invoke-host-hash-bench.bin"
    try:
        with path.open("wb") as fh:
            block = os.urandom(CHUNK)
            for _ in range(size // CHUNK):
                fh.write(block)
        mb = size / 1e6
        print(f"file: {size / 1024**3:.2f} GiB, {os.cpu_count()} CPUs")
        for mode in ("warm", "cold"):
            base = measure(ALGORITHMS["sha1"], path, cold=mode == "cold")
            for name, fn in ALGORITHMS.items():
                seconds = base if name == "sha1" else measure(fn, path, cold=mode == "cold")
                rate = f"{mb / seconds:9.0f} MB/s" if not name.startswith("imohash") else f"{seconds * 1e3:9.2f} ms  "
                print(f"{mode:5} {name:38} {seconds:8.3f} s {rate}  x{base / seconds:6.2f} vs sha1")
    finally:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
