"""CPU to a built app: the host (import + ``create_app``) against an empty Litestar app, with and without bytecode
caches for the host's own sources, in one run.

    .venv/bin/python bench/startup_cpu.py [--rounds 3] [--baseline-src DIR]

Each measurement is a child process (its user + system CPU from ``getrusage``); no socket is opened, so it shows
what importing and building cost without uvicorn's start. "Cold" removes the ``__pycache__`` folders of this
checkout's ``invoke_host``, ``sdk`` and ``plugins`` and runs with ``PYTHONDONTWRITEBYTECODE=1`` (how a source
checkout starts on machines that set it); site-packages keep their caches on every side. With ``--baseline-src``
another checkout's host (``git worktree add DIR REV``) is measured in the same rounds, from its bytecode caches.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from startup import checkout_path

ROOT = Path(__file__).resolve().parents[1]
HOST = (
    "import tempfile\nimport uvicorn\nimport invoke_host.cli\nfrom invoke_host.app import create_app\n"
    "from invoke_host.config import HostConfig\ncreate_app(HostConfig(root=tempfile.mkdtemp()))"
)
EMPTY = (
    "import litestar, uvicorn\nfrom litestar import get\n@get('/v')\nasync def v() -> dict[str, str]:\n"
    "    return {}\nlitestar.Litestar([v])"
)


def cpu(code: str, env: dict[str, str], cwd: Path = ROOT) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=cwd, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def drop_caches() -> None:
    for top in ("invoke_host", "sdk", "plugins"):
        for cache in (ROOT / top).rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, metavar="DIR",
                        help="a checkout of another commit, measured in the same rounds (bytecode cached)")
    args = parser.parse_args()
    warm = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cold = {**warm, "PYTHONDONTWRITEBYTECODE": "1"}
    base = None
    base_dir = ROOT
    if args.baseline_src is not None:
        # Run in that checkout: `python -c` puts the working directory first on sys.path.
        base_dir = args.baseline_src.resolve()
        base = {**warm, "PYTHONPATH": os.pathsep.join(map(str, checkout_path(base_dir)))}
        cpu(HOST, base, base_dir)
    cpu(HOST, warm)  # writes the caches the warm rounds read
    cpu(EMPTY, warm)
    results: dict[str, list[float]] = {"empty Litestar app": [], "host, bytecode cached": [],
                                       "host, sources compiled": []}
    if base is not None:
        results["baseline host, cached"] = []
    for _ in range(args.rounds):
        results["empty Litestar app"].append(cpu(EMPTY, warm))
        results["host, bytecode cached"].append(cpu(HOST, warm))
        if base is not None:
            results["baseline host, cached"].append(cpu(HOST, base, base_dir))
        drop_caches()
        results["host, sources compiled"].append(cpu(HOST, cold))
        cpu(HOST, warm)  # the caches back for the next round
    empty = statistics.median(results["empty Litestar app"])
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:26} CPU median {median:.2f} s ({median / empty:.2f}x the empty app), min {min(values):.2f} s")


if __name__ == "__main__":
    main()
