"""CPU to a built app: the host (import + ``create_app``) against an empty Litestar app, with and without bytecode
caches for the host's own sources, in one run.

    .venv/bin/python bench/startup_cpu.py [--rounds 3] [--baseline-src DIR] [--packs-site DIR]

Each measurement is a child process (its user + system CPU from ``getrusage``); no socket is opened, so it shows
what importing and building cost without uvicorn's start. "Cold" removes the ``__pycache__`` folders of this
checkout's ``invoke_host``, ``sdk`` and ``plugins`` and runs with ``PYTHONDONTWRITEBYTECODE=1`` (how a source
checkout starts on machines that set it); site-packages keep their caches on every side. With ``--baseline-src``
another checkout's host (``git worktree add DIR REV``) is measured in the same rounds, from its bytecode caches.
"Host as serve builds it" is the same with the cyclic collector paused until the app is built, as ``invoke-host
serve`` does (invoke_host/start_gc.py); the plain host pauses it only while plugins load and register.
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
SERVE = (
    "from invoke_host.start_gc import collections_paused\nwith collections_paused():\n"
    + "".join(f"    {line}\n" for line in HOST.splitlines())
)
"""The host as ``invoke-host serve`` builds it: no cyclic collections until the app is built (start_gc.py)."""
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
    parser.add_argument("--packs-site", type=Path, metavar="DIR",
                        help="a site directory of installed packs (bench/startup.py --packs-dir DIR makes DIR/site): "
                        "each host is measured with them too")
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
                                       "host as serve builds it": [], "host, sources compiled": []}
    if base is not None:
        results["baseline host, cached"] = []
    packs = base_packs = None
    if args.packs_site is not None:
        site = str(args.packs_site.resolve())
        packs = {**warm, "PYTHONPATH": site}
        results["host + packs"] = []
        results["host as serve builds it + packs"] = []
        if base is not None:
            base_packs = {**base, "PYTHONPATH": base["PYTHONPATH"] + os.pathsep + site}
            results["baseline host + packs"] = []
    for _ in range(args.rounds):
        results["empty Litestar app"].append(cpu(EMPTY, warm))
        results["host, bytecode cached"].append(cpu(HOST, warm))
        results["host as serve builds it"].append(cpu(SERVE, warm))
        if base is not None:
            results["baseline host, cached"].append(cpu(HOST, base, base_dir))
        if packs is not None:
            results["host + packs"].append(cpu(HOST, packs))
            results["host as serve builds it + packs"].append(cpu(SERVE, packs))
        if base_packs is not None:
            results["baseline host + packs"].append(cpu(HOST, base_packs, base_dir))
        drop_caches()
        results["host, sources compiled"].append(cpu(HOST, cold))
        cpu(HOST, warm)  # the caches back for the next round
    empty = statistics.median(results["empty Litestar app"])
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:32} CPU median {median:.2f} s ({median / empty:.2f}x the empty app), min {min(values):.2f} s")


if __name__ == "__main__":
    main()
