"""Engine overhead: a chain of add nodes and an iterate -> add -> collect, against InvokeAI 6.14.2's engine.

    .venv/bin/python bench/graph_overhead.py            # ours and InvokeAI's (builds its venv once, minutes)
    .venv/bin/python bench/graph_overhead.py --ours-only

Both engines run the same graphs in the same run with no services (InvokeAI: ``GraphExecutionState``
``next()``/``complete()`` calling ``invoke`` directly; ours: ``run_graph`` with the output cache on,
which only adds to our time). Each graph runs at two sizes so the growth shows: linear engines keep
the same time per node when the graph doubles.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import invoke_core_nodes.plugin
from invokeai_baseline import measure_invokeai

from invoke_host.engine import OutputCache, run_graph
from invoke_host.host import build_host


def _edge(a: str, fa: str, b: str, fb: str) -> dict[str, Any]:
    return {"source": {"node_id": a, "field": fa}, "destination": {"node_id": b, "field": fb}}


def chain(n: int) -> dict[str, Any]:
    return {"nodes": {f"n{i}": {"type": "add", "b": 1} for i in range(n)},
            "edges": [_edge(f"n{i - 1}", "value", f"n{i}", "a") for i in range(1, n)]}


def iterate(n: int) -> dict[str, Any]:
    return {"nodes": {"r": {"type": "range_of_size", "start": 0, "size": n, "step": 1}, "it": {"type": "iterate"},
                      "add": {"type": "add", "b": 1}, "col": {"type": "collect"}},
            "edges": [_edge("r", "collection", "it", "collection"), _edge("it", "item", "add", "a"),
                      _edge("add", "value", "col", "item")]}


def measure_ours(specs: list[tuple[str, int]], repeats: int) -> dict[str, dict[str, float]]:
    host = build_host(plugins=[("core_nodes", invoke_core_nodes.plugin)], entry_points=False)
    out = {}
    for kind, size in specs:
        graph = chain(size) if kind == "chain" else iterate(size)
        best = float("inf")
        nodes = 0
        for _ in range(repeats):
            start = time.perf_counter()
            result = run_graph(host, graph, cache=OutputCache())
            best = min(best, time.perf_counter() - start)
            assert result.status == "completed"
            nodes = len(result.state.executed_history)
        out[f"{kind}:{size}"] = {"nodes": nodes, "seconds": best}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ours-only", action="store_true", help="skip InvokeAI (no venv build)")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "invoke-host-bench",
                        help="where InvokeAI's venv is built and kept")
    parser.add_argument("--chain", type=int, nargs=2, default=[500, 1000], help="two chain lengths")
    parser.add_argument("--items", type=int, nargs=2, default=[5000, 10000], help="two iterate sizes")
    args = parser.parse_args()
    specs = [("chain", args.chain[0]), ("chain", args.chain[1]), ("iterate", args.items[0]),
             ("iterate", args.items[1])]
    ours = measure_ours(specs, repeats=3)
    theirs: dict[str, dict[str, float]] = {}
    if not args.ours_only:
        try:
            theirs = measure_invokeai(args.cache, specs, timeout=1800)
        except Exception as exc:  # noqa: BLE001 - report and still print our own figures
            print(f"InvokeAI was not measured: {type(exc).__name__}: {exc}")
    print(f"{'graph':16} {'nodes':>7} {'ours s':>8} {'us/node':>8} {'nodes/s':>9} "
          f"{'InvokeAI s':>10} {'us/node':>8} {'speed-up':>8}")
    for key, mine in ours.items():
        per = mine["seconds"] / mine["nodes"] * 1e6
        rate = mine["nodes"] / mine["seconds"]
        line = f"{key:16} {mine['nodes']:>7} {mine['seconds']:>8.3f} {per:>8.1f} {rate:>9.0f}"
        if key in theirs:
            t = theirs[key]
            their_per = t["seconds"] / t["nodes"] * 1e6
            line += f" {t['seconds']:>10.3f} {their_per:>8.1f} {t['seconds'] / mine['seconds']:>7.1f}x"
        print(line)
    for kind in ("chain", "iterate"):
        small, large = (ours[f"{kind}:{s}"] for s in (args.chain if kind == "chain" else args.items))
        growth = (large["seconds"] / large["nodes"]) / (small["seconds"] / small["nodes"])
        print(f"{kind}: time per node at the larger size / at the smaller size = {growth:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
