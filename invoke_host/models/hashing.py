"""Content identity of models: blake3 over every file, and imohash as a cheap change check.

blake3 runs near disk speed (see docs/benchmarks.md), so the key can derive from the full content:
the same model installed twice is recognised as one. A folder hashes each file and combines the
per-file digests with their relative paths in sorted order, so the result does not depend on the
order the file system lists them in. imohash reads only the size and three 16 KiB samples:
same-size files that differ elsewhere collide, so it only decides whether a sync must re-hash.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["HASH_ALGORITHM", "ProgressCallback", "hash_model", "imohash_model", "model_files", "model_size"]

HASH_ALGORITHM = "blake3"
_CHUNK = 8 * 1024 * 1024

ProgressCallback = Callable[[int, int], None]
"""Called with (bytes hashed so far, total bytes)."""


def model_files(path: Path) -> list[Path]:
    """The files that make up a model: the file itself, or every non-hidden file of a folder, sorted."""
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def model_size(path: Path) -> int:
    """Bytes on disk of all the model's files."""
    return sum(p.stat().st_size for p in model_files(path))


def _blake3() -> Any:
    """A new blake3 hasher; the module is imported here, not at import: 1 ms of every start, and only hashing a
    model uses it."""
    import blake3

    return blake3.blake3()


def _hash_file(path: Path, done: int, total: int, progress: ProgressCallback | None) -> tuple[bytes, int]:
    hasher = _blake3()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return hasher.digest(), done


def hash_model(path: Path, progress: ProgressCallback | None = None) -> str:
    """``'blake3:<hex>'`` of a file, or of a folder's files combined with their relative paths."""
    files = model_files(path)
    total = sum(p.stat().st_size for p in files)
    if path.is_file():
        digest, _ = _hash_file(path, 0, total, progress)
        return f"{HASH_ALGORITHM}:{digest.hex()}"
    combined = _blake3()
    done = 0
    for file in files:
        digest, done = _hash_file(file, done, total, progress)
        combined.update(file.relative_to(path).as_posix().encode() + b"\0" + digest)
    return f"{HASH_ALGORITHM}:{combined.hexdigest()}"


def imohash_model(path: Path) -> str:
    """imohash of a file, or of a folder's files (with their relative paths) combined; a change check only."""
    import imohash  # here, not at import: 8 ms of every start, for a check that runs only when models are synced

    if path.is_file():
        return str(imohash.hashfile(str(path), hexdigest=True))
    combined = _blake3()
    for file in model_files(path):
        combined.update(file.relative_to(path).as_posix().encode() + b"\0")
        combined.update(bytes.fromhex(imohash.hashfile(str(file), hexdigest=True)))
    return f"folder:{combined.hexdigest()}"
