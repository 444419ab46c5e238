"""Where a server's CPU goes during runs of the iterate graph: the garbage collector and the row encoders.

    .venv/bin/python bench/run_costs.py --items 6 --size 10000 . /tmp/base      # this checkout and another
    .venv/bin/python bench/run_costs.py --items 1 --size 100000 --warm-size 10000 . /tmp/base

Each checkout's server (``bench/server_path.py``'s ``Server``, ``invoke-host serve`` as a user starts it) gets
``bench/run_costs_site`` first on its PYTHONPATH, whose ``sitecustomize`` times every garbage collection and the
two row encoders inside the server (see that file). After a warm-up (a 10-node chain, two items of the graph),
``--items`` items run on each server, the servers alternating. Printed per item: the server's CPU from the POST to
the end of the GET (median; as ``server_path.py`` counts it) and over the whole sequence (what the server did after
answering, such as freeing the finished state, included); CPU in the collector per generation; CPU in the two
encoders. Only the timers are added: the code that runs is the checkout's.
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from graph_overhead import chain, iterate
from server_path import Server, _checkout_path, _cpu_seconds, run_through_server

SITE = Path(__file__).parent / "run_costs_site"


def _read(out: Path) -> dict[str, list[float]]:
    for _ in range(50):
        if out.exists():
            return dict(ast.literal_eval(out.read_text()))
        time.sleep(0.1)
    raise RuntimeError(f"the server wrote no {out}: was bench/run_costs_site on its path?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=6, help="measured items per server")
    parser.add_argument("--size", type=int, default=10_000, help="items of the iterate graph")
    parser.add_argument("--warm-size", type=int, help="items of the warm-ups' iterate graph (default: --size)")
    parser.add_argument("checkouts", nargs="+", type=Path, help="'.' for this checkout, or another one's folder")
    args = parser.parse_args()
    graph = iterate(args.size)
    warm = iterate(args.warm_size) if args.warm_size else graph
    with tempfile.TemporaryDirectory() as tmp:
        sides: list[dict[str, Any]] = []
        try:
            for n, checkout in enumerate(args.checkouts):
                root = Path(tmp) / str(n)
                root.mkdir()
                path = [str(SITE)] + ([] if checkout == Path(".") else [_checkout_path(checkout)])
                out = root / "costs.txt"
                server = Server(root, env={"PYTHONPATH": os.pathsep.join(path), "RUN_COSTS_OUT": str(out)})
                sides.append({"label": str(checkout), "server": server, "out": out, "cpu": [],
                              "client": httpx.Client(base_url=server.url, timeout=900)})
            for side in sides:
                run_through_server(side["client"], chain(10), 0.005, 900)
                for _ in range(2):
                    run_through_server(side["client"], warm, 0.005, 900)
            time.sleep(1.2)  # the timers' file is written every 0.5 s
            for side in sides:
                side["before"], side["cpu0"] = _read(side["out"]), _cpu_seconds(side["server"].process.pid)
            for k in range(args.items):
                for side in sides if k % 2 == 0 else sides[::-1]:
                    run = run_through_server(side["client"], graph, 0.005, 900, side["server"].process.pid)
                    side["cpu"].append(run.cpu_seconds)
            time.sleep(1.2)
            for side in sides:
                whole = (_cpu_seconds(side["server"].process.pid) - side["cpu0"]) / args.items
                after, before = _read(side["out"]), side["before"]
                per = {k: [(a - b) / args.items for a, b in zip(after[k], before[k], strict=True)] for k in after}
                gcs = " ".join(f"gen{g} {per[f'gc{g}'][0]:.0f}x {per[f'gc{g}'][1] * 1000:.0f} ms" for g in range(3))
                print(f"{side['label']}: server CPU per item {statistics.median(side['cpu']):.3f} s (median, POST to "
                      f"GET; least {min(side['cpu']):.3f}), {whole:.3f} s over the whole sequence")
                print(f"  collector per item: {gcs}")
                for key in ("rows", "results_json"):
                    _calls, cpu, rows = per[key]
                    print(f"  {key}: {cpu * 1000:.0f} ms per item, {cpu / rows * 1e6 if rows else 0:.2f} us a row")
        finally:
            for side in sides:
                side["client"].close()
                side["server"].close()
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
