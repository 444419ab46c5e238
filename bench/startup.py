"""Start-up cost of 1,000 plugin node types against an empty host, measured in the same run.

Generates 50 packs of 20 nodes each, installs them with pip into a temporary site directory,
then starts real `invoke-host serve` processes with and without that directory on PYTHONPATH
(interleaved, several rounds) and times, for each:
  - start: process spawn until the first answered request (GET /api/v1/app/version),
  - openapi: the first GET /schema/openapi.json (the document is built on first request),
  - nodes: the first GET /api/v1/nodes.
Prints medians and the ratio packs/empty.

    .venv/bin/python bench/startup.py [--packs 50] [--nodes 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as r:
        return bytes(r.read())


def one_start(site: Path | None, root: Path) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, "INVOKE_HOST_ROOT": str(root)}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    cli = Path(sys.executable).parent / "invoke-host"
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(cli), "serve", "--port", str(port), "--log-level", "error"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
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
        t1 = time.perf_counter()
        doc = json.loads(get(f"{base}/schema/openapi.json"))
        t_openapi = time.perf_counter() - t1
        t2 = time.perf_counter()
        nodes = json.loads(get(f"{base}/api/v1/nodes"))
        t_nodes = time.perf_counter() - t2
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    mapping = doc["components"]["schemas"].get("AnyInvocation", {}).get("discriminator", {}).get("mapping", {})
    return {"start": t_start, "openapi": t_openapi, "nodes": t_nodes, "types": float(len(mapping)),
            "templates": float(len(nodes))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="invoke-bench-") as tmp:
        tmpdir = Path(tmp)
        print(f"writing {args.packs} packs x {args.nodes} nodes ...", flush=True)
        dirs = write_packs(tmpdir / "src", args.packs, args.nodes)
        site = tmpdir / "site"
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
             "--disable-pip-version-check", "--target", str(site), *map(str, dirs)],
            check=True,
        )
        print(f"pip installed them in {time.perf_counter() - t:.1f} s", flush=True)
        results: dict[str, list[dict[str, float]]] = {"empty": [], "packs": []}
        for r in range(args.rounds):
            # Interleaved so that machine noise hits both sides alike.
            results["empty"].append(one_start(None, tmpdir / "root-empty"))
            results["packs"].append(one_start(site, tmpdir / "root-packs"))
            print(f"round {r + 1}/{args.rounds} done", flush=True)

    def med(side: str, key: str) -> float:
        return statistics.median(x[key] for x in results[side])

    types = int(results["packs"][0]["types"]) - int(results["empty"][0]["types"])
    print(f"\nnode types added by the packs: {types}")
    print(f"{'measure':28} {'empty host':>12} {'with packs':>12} {'ratio':>8}")
    for key, label in [("start", "start to first answer (s)"), ("openapi", "first openapi.json (s)"),
                       ("nodes", "first /api/v1/nodes (s)")]:
        e, p = med("empty", key), med("packs", key)
        print(f"{label:28} {e:12.3f} {p:12.3f} {p / e:8.2f}x")
    e = med("empty", "start") + med("empty", "openapi")
    p = med("packs", "start") + med("packs", "openapi")
    print(f"{'start + openapi (s)':28} {e:12.3f} {p:12.3f} {p / e:8.2f}x")


if __name__ == "__main__":
    main()
