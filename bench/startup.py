"""Start-up of the host against an empty Litestar app, and the cost of 1,000 plugin node types, in one run.

Generates 50 packs of 20 nodes each, installs them with pip into a temporary site directory, then starts,
interleaved for several rounds: an empty Litestar app under uvicorn (one route, the same answer as the
host's version route), a real `invoke-host serve` with no pack, and one with that directory on PYTHONPATH.
It times, for each:
  - start: process spawn until the first answered request (GET /api/v1/app/version),
  - openapi: the first GET /schema/openapi.json (the document is built on first request),
  - nodes: the first GET /api/v1/nodes.
Prints medians, the host's start against the empty app's (aim: at most 1.5x), and what the packs add
(aim: at most 0.5 s). The host restarts on the root of its earlier start, so it starts from the node catalogue
that start wrote; a fourth side ("packs cold") removes the catalogue before each start, as after a pack install.

    .venv/bin/python bench/startup.py [--packs 50] [--nodes 20] [--rounds 5] [--packs-dir DIR]

With ``--packs-dir`` the installed packs are kept in DIR and reused by the next run with the same --packs and
--nodes (pip takes minutes for 50 packs on a loaded machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import tomllib
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACK_PYPROJECT = """\
[build-system]
requires = ["setuptools>=65"]
build-backend = "setuptools.build_meta"

[project]
name = "bench-pack-{i}"
version = "0.1.0"
dependencies = ["invoke-sdk"]

[project.entry-points."invoke_host.plugins"]
bench_pack_{i} = "bench_pack_{i}.plugin"

[tool.setuptools]
packages = ["bench_pack_{i}"]
"""

NODE = '''
@invocation("bench_{i}_{j}", title="Bench {i}.{j}", tags=["bench"], category="bench")
class Bench{i}x{j}(BaseInvocation):
    """Adds two numbers, scaled."""

    a: int = InputField(default=0, description="first")
    b: int = InputField(default=0, ge=0, description="second")
    scale: float = InputField(default=1.0, gt=0)
    label: str = InputField(default="", max_length=64)

    def invoke(self, context: InvocationContext) -> BenchOutput{i}:
        return BenchOutput{i}(value=int((self.a + self.b) * self.scale))
'''


def write_packs(root: Path, packs: int, nodes: int) -> list[Path]:
    dirs = []
    for i in range(packs):
        d = root / f"bench_pack_{i}"
        pkg = d / f"bench_pack_{i}"
        pkg.mkdir(parents=True)
        (d / "pyproject.toml").write_text(PACK_PYPROJECT.format(i=i))
        (pkg / "__init__.py").write_text("")
        body = textwrap.dedent(f'''\
            from invoke_sdk import BaseInvocation, BaseInvocationOutput, InputField, InvocationContext, OutputField
            from invoke_sdk import invocation, invocation_output


            @invocation_output("bench_output_{i}")
            class BenchOutput{i}(BaseInvocationOutput):
                value: int = OutputField()
            ''')
        body += "".join(NODE.format(i=i, j=j) for j in range(nodes))
        (pkg / "nodes.py").write_text(body)
        names = ", ".join(f"Bench{i}x{j}" for j in range(nodes))
        (pkg / "plugin.py").write_text(textwrap.dedent(f'''\
            from invoke_sdk import hookimpl


            @hookimpl
            def register_invocations(register):
                from bench_pack_{i}.nodes import {names}

                for cls in ({names},):
                    register(cls)
            '''))
        dirs.append(d)
    return dirs


EMPTY_APP = """\
import sys

import msgspec
import uvicorn
from litestar import Litestar, get


class AppVersion(msgspec.Struct):
    version: str
    sdk_version: str


@get("/api/v1/app/version", sync_to_thread=False)
def get_version() -> AppVersion:
    return AppVersion(version="0", sdk_version="0")


uvicorn.run(Litestar(route_handlers=[get_version]), host="127.0.0.1", port=int(sys.argv[1]), log_level="error")
"""
"""The baseline: what any Litestar server pays to answer its first request (interpreter, imports, uvicorn)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return bytes(r.read())


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far; on a shared machine it varies less than wall time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")  # not Linux: wall times only
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def program(checkout: Path, folder: Path) -> Path:
    """``folder/invoke-host``: the console script pip writes for ``checkout``'s ``[project.scripts]`` entry.

    Each side runs its own checkout's entry point (``invoke_host.launcher:main`` since the launcher, before it
    ``invoke_host.cli:main``), whatever this environment's installed script names; the file is named
    ``invoke-host`` because ``serve`` restarts on the system allocator only under that program name.
    """
    entry = tomllib.loads((checkout / "pyproject.toml").read_text())["project"]["scripts"]["invoke-host"]
    module, func = entry.split(":")
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "invoke-host"
    script.write_text(
        f"#!{sys.executable}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom {module} import {func}\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        f"    sys.exit({func}())\n"
    )
    script.chmod(0o755)
    return script


def one_start(pythonpath: list[Path], root: Path | None, cli: Path | None = None, cold: bool = False
              ) -> dict[str, float]:
    """One server from spawn to its first answers; ``root`` None starts the empty Litestar app instead.

    ``cli`` is the ``invoke-host`` program to start (default: this environment's installed one). ``cold`` removes
    the node catalogue an earlier start wrote in ``root``, so this start registers every pack's nodes and writes it.
    """
    if cold and root is not None:
        (root / "node-catalogue.json").unlink(missing_ok=True)
    port = free_port()
    env = {**os.environ, "INVOKE_HOST_ROOT": str(root)}
    # Started as an installed server starts the second time: from cached bytecode. With PYTHONDONTWRITEBYTECODE
    # (set on these machines) every start of a source checkout compiled its ~200 modules again, about a second
    # of CPU that the empty Litestar app, read from site-packages' caches, never paid.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(map(str, pythonpath))
    cli = cli or Path(sys.executable).parent / "invoke-host"
    command = (
        [sys.executable, "-c", EMPTY_APP, str(port)]
        if root is None
        else [str(cli), "serve", "--port", str(port), "--log-level", "error"]
    )
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                get(f"{base}/api/v1/app/version")
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError("server exited") from None
                time.sleep(0.01)
        t_start = time.perf_counter() - t0
        cpu_start = cpu_seconds(proc.pid)
        if root is None:
            return {"start": t_start, "cpu": cpu_start, "openapi": 0.0, "nodes": 0.0, "types": 0.0, "templates": 0.0}
        t1 = time.perf_counter()
        doc = json.loads(get(f"{base}/schema/openapi.json"))
        t_openapi = time.perf_counter() - t1
        t2 = time.perf_counter()
        nodes = json.loads(get(f"{base}/api/v1/nodes"))
        t_nodes = time.perf_counter() - t2
        cpu_first = cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    mapping = doc["components"]["schemas"].get("AnyInvocation", {}).get("discriminator", {}).get("mapping", {})
    return {"start": t_start, "cpu": cpu_start, "openapi": t_openapi, "nodes": t_nodes, "cpu_first": cpu_first,
            "types": float(len(mapping)), "templates": float(len(nodes))}


def checkout_path(checkout: Path) -> list[Path]:
    """The PYTHONPATH that makes another checkout's host, SDK and first-party plugins the ones imported.

    Earlier on the path than the editable installs (whose finders come after it), so that checkout's modules win;
    the entry points stay those of this environment, which name the same modules.
    """
    root = checkout.resolve()
    plugins = sorted(p for p in (root / "plugins").iterdir() if (p / "pyproject.toml").is_file())
    return [root, root / "sdk", *plugins]


def installed_packs(folder: Path, packs: int, nodes: int) -> Path:
    """A site directory holding the generated packs, installed now unless ``folder`` already holds these ones."""
    site = folder / "site"
    marker = folder / "installed.json"
    wanted = {"packs": packs, "nodes": nodes, "node_source": NODE}
    if site.is_dir() and marker.is_file() and json.loads(marker.read_text()) == wanted:
        print(f"reusing the packs installed in {site}", flush=True)
        return site
    for stale in (folder / "src", site):
        if stale.exists():
            shutil.rmtree(stale)
    print(f"writing {packs} packs x {nodes} nodes ...", flush=True)
    dirs = write_packs(folder / "src", packs, nodes)
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(site), *map(str, dirs)],
        check=True,
    )
    print(f"pip installed them in {time.perf_counter() - t:.1f} s", flush=True)
    marker.write_text(json.dumps(wanted))
    return site


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--baseline-src", type=Path, metavar="DIR",
        help="a checkout of another commit (git worktree add DIR REV): its invoke_host is started too, in the "
        "same rounds, so a change is measured before/after in one run",
    )
    parser.add_argument(
        "--packs-dir", type=Path, metavar="DIR",
        help="keep the installed packs in DIR and reuse them on the next run with the same --packs and --nodes",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="invoke-bench-") as tmp:
        tmpdir = Path(tmp)
        packs_dir = args.packs_dir or tmpdir / "packs"
        packs_dir.mkdir(parents=True, exist_ok=True)
        site = installed_packs(packs_dir.resolve(), args.packs, args.nodes)
        cli = program(ROOT, tmpdir / "bin-this")
        # "packs" starts again on the root of its earlier start, as a server restarted with the same packs does
        # (from its node catalogue); "packs cold" removes the catalogue first, as after installing a pack.
        sides: dict[str, tuple[list[Path], Path | None, Path | None]] = {
            "litestar": ([], None, None),
            "empty": ([], tmpdir / "root-empty", cli),
            "packs": ([site], tmpdir / "root-packs", cli),
            "packs cold": ([site], tmpdir / "root-packs-cold", cli),
        }
        if args.baseline_src is not None:
            base = checkout_path(args.baseline_src)
            base_cli = program(args.baseline_src.resolve(), tmpdir / "bin-base")
            sides["base empty"] = (base, tmpdir / "root-base-empty", base_cli)
            sides["base packs"] = ([*base, site], tmpdir / "root-base-packs", base_cli)
        results: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
        for pythonpath, root, side_cli in sides.values():
            one_start(pythonpath, root, side_cli)  # not counted: writes the bytecode caches the rounds then read
        for r in range(args.rounds):
            # Interleaved so that machine noise hits every side alike.
            for side, (pythonpath, root, side_cli) in sides.items():
                results[side].append(one_start(pythonpath, root, side_cli, cold=side == "packs cold"))
            print(f"round {r + 1}/{args.rounds} done", flush=True)

    types = int(results["packs"][0]["types"]) - int(results["empty"][0]["types"])
    print(f"\nnode types added by the packs: {types}")
    # The median, and the minimum: on a shared machine the fastest round is the nearest to the cost itself.
    for stat_name, stat in (("median", statistics.median), ("minimum", min)):

        def of(side: str, key: str, stat: Callable[[list[float]], float] = stat) -> float:
            return stat([x[key] for x in results[side]])

        report(results, f"{stat_name} of {args.rounds} rounds", of)


def report(results: dict[str, list[dict[str, float]]], title: str, med: Callable[[str, str], float]) -> None:
    """The table of one statistic over the rounds, and the two figures the aims are about."""
    hosts = [side for side in results if side != "litestar"]
    types = int(results["packs"][0]["types"]) - int(results["empty"][0]["types"])
    print(f"\n{title}")
    print(f"{'measure':38}" + "".join(f"{side:>13}" for side in results))
    rows = [("start", "start to first answer, wall (s)"), ("cpu", "start to first answer, CPU (s)"),
            ("openapi", "first openapi.json, wall (s)"), ("nodes", "first /api/v1/nodes, wall (s)"),
            ("cpu_first", "start + both first requests, CPU (s)")]
    for key, label in rows:
        cells = [f"{med(side, key):13.3f}" if side in hosts or key in ("start", "cpu") else f"{'':13}"
                 for side in results]
        print(f"{label:38}" + "".join(cells))

    for prefix in ("", "base "):
        if f"{prefix}empty" not in results:
            continue
        empty, packs = f"{prefix}empty", f"{prefix}packs"
        print(f"{prefix or 'this '}host start / empty Litestar app start (aim <= 1.5x): "
              f"wall {med(empty, 'start') / med('litestar', 'start'):.2f}x, "
              f"CPU {med(empty, 'cpu') / med('litestar', 'cpu'):.2f}x")
        first = {side: med(side, "start") + med(side, "openapi") + med(side, "nodes") for side in (empty, packs)}
        print(f"{prefix or 'this '}host, {types} node types add (aim <= 0.5 s): "
              f"to start, wall {med(packs, 'start') - med(empty, 'start'):+.3f} s, "
              f"CPU {med(packs, 'cpu') - med(empty, 'cpu'):+.3f} s; "
              f"to start + first openapi.json + first nodes, wall {first[packs] - first[empty]:+.3f} s, "
              f"CPU {med(packs, 'cpu_first') - med(empty, 'cpu_first'):+.3f} s")
    if "packs cold" in results:
        print(f"this host, {types} node types on a cold start (no node catalogue yet, so it is written): "
              f"to start, CPU {med('packs cold', 'cpu') - med('empty', 'cpu'):+.3f} s; "
              f"start + both first requests, CPU {med('packs cold', 'cpu_first') - med('empty', 'cpu_first'):+.3f} s")


if __name__ == "__main__":
    main()
