"""InvokeAI 6.14.2's own engine, measured on the graphs of ``graph_overhead.py``.

Two halves: :func:`ensure_venv` (run by the benchmark with our Python) builds a separate virtual
environment, because InvokeAI pins diffusers/transformers/numpy versions that cannot share ours; and
:data:`CHILD` is the script that venv's Python runs to time ``GraphExecutionState.next()/complete()``
with no services, printing one JSON object. See ../../shared FACTS.md for why each constraint exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["CHILD", "ensure_venv", "measure_invokeai"]

INVOKEAI_VERSION = "6.14.2"

CONSTRAINTS = [
    "torch==2.13.0",
    "numpy<2",
    "diffusers==0.40.0",
    "transformers>=5.5,<5.6",
    "semver~=3.0.1",
    "fastapi>=0.141.1,<0.142",
    "onnxruntime==1.19.2",
    "onnx==1.16.1",
    "torchvision==0.28.0",
]
EXTRA = [
    "pydantic-settings", "networkx", "pillow", "pyyaml", "blake3", "tqdm", "opencv-python-headless", "einops",
    "psutil", "Deprecated", "gguf", "picklescan", "spandrel", "compel", "accelerate", "pydantic",
]


def _run(cmd: list[str], log: Path) -> None:
    with log.open("ab") as out:
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT)


def ensure_venv(cache: Path) -> Path:
    """The Python of a venv holding invokeai==6.14.2 (built once under ``cache``, then reused)."""
    venv = cache / f"invokeai-{INVOKEAI_VERSION}"
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    if marker.exists():
        return python
    cache.mkdir(parents=True, exist_ok=True)
    log = cache / "invokeai-venv.log"
    print(f"Building InvokeAI {INVOKEAI_VERSION} venv in {venv} (log: {log}); this takes a few minutes once")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, "torch==2.13.0"], log)
    constraints = cache / "invokeai-constraints.txt"
    constraints.write_text("\n".join(CONSTRAINTS) + "\n")
    _run([*pip, "-c", str(constraints), *CONSTRAINTS[1:], *EXTRA], log)
    _run([*pip, "--no-deps", f"invokeai=={INVOKEAI_VERSION}"], log)
    marker.write_text("ok\n")
    return python


CHILD = r'''
import json, sys, time
import torch
# A CUDA torchvision beside CPU torch: define its ops' schemas so its Python parts import (FACTS.md).
lib = torch.library.Library("torchvision", "DEF")
lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
import invokeai.app.invocations as inv
inv.__all__ = ["primitives", "math", "collections", "logic"]
from invokeai.app.services.shared.graph import Graph, GraphExecutionState, Edge, EdgeConnection
from invokeai.app.invocations.math import AddInvocation
from invokeai.app.invocations.collections import RangeOfSizeInvocation
from invokeai.app.services.shared.graph import IterateInvocation, CollectInvocation

def edge(a, fa, b, fb):
    return Edge(source=EdgeConnection(node_id=a, field=fa), destination=EdgeConnection(node_id=b, field=fb))

def chain(n):
    g = Graph()
    for i in range(n):
        g.nodes[f"n{i}"] = AddInvocation(id=f"n{i}", b=1)
        if i:
            g.edges.append(edge(f"n{i-1}", "value", f"n{i}", "a"))
    return g

def iterate(n):
    g = Graph()
    g.nodes["r"] = RangeOfSizeInvocation(id="r", start=0, size=n, step=1)
    g.nodes["it"] = IterateInvocation(id="it")
    g.nodes["add"] = AddInvocation(id="add", b=1)
    g.nodes["col"] = CollectInvocation(id="col")
    g.edges += [edge("r", "collection", "it", "collection"), edge("it", "item", "add", "a"),
                edge("add", "value", "col", "item")]
    return g

def run(g):
    t = time.perf_counter()
    s = GraphExecutionState(graph=g)
    n = 0
    while True:
        node = s.next()
        if node is None:
            break
        s.complete(node.id, node.invoke(None))
        n += 1
    return n, time.perf_counter() - t

out = {}
for spec in json.loads(sys.argv[1]):
    kind, size = spec
    g = chain(size) if kind == "chain" else iterate(size)
    n, secs = run(g)
    out[f"{kind}:{size}"] = {"nodes": n, "seconds": secs}
print(json.dumps(out))
'''


def measure_invokeai(cache: Path, specs: list[tuple[str, int]], timeout: float) -> dict[str, dict[str, float]]:
    """Run :data:`CHILD` in the InvokeAI venv and return its timings by ``"kind:size"``."""
    python = ensure_venv(cache)
    env = {**os.environ, "INVOKEAI_ROOT": str(cache / "invokeai-root")}
    done = subprocess.run(
        [str(python), "-c", CHILD, json.dumps(specs)],
        check=True, capture_output=True, text=True, timeout=timeout, env=env,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
