"""The chain (or an iterate) through the server against in-process, as medians of many alternating runs (#11).

    .venv/bin/python bench/server_path_medians.py --repeats 25 --compare-with /tmp/base
    .venv/bin/python bench/server_path_medians.py --iterate 100000 --repeats 5    # the iterate graph instead

``bench/server_path.py`` compares the best of a few runs per side, which on a shared machine is decided by the
one quiet moment each side happened to get. This runs one graph (default: the chain of 1,000 ``add``) many times
in-process and through each server in turn (the servers' order swapped every round), and prints medians and
minima of the wall time (POST to the end of the GET), the server's CPU (all its threads, ``/proc/<pid>/stat``)
against ``time.process_time()`` in-process, the item's own run (``started_at`` to ``completed_at``) and the GET.
The servers and the in-process host are those of ``bench/server_path.py``.

Polls: a status poll costs the server 0.7-1.1 ms of CPU (uvicorn, Litestar, one query), and a chain of 1,000
``add`` (0.1-0.15 s) was polled 15-25 times every 5 ms: 15-25% of the server CPU the ratio counted, which
in-process has no counterpart of. ``--first-poll F`` (default 0.8) has each run wait F times the median wall time
of that server's earlier runs of the graph before its first poll (each server its own figure, warm-ups included),
then poll every ``--poll`` seconds as before: 1-3 polls a run, and the item is still seen within one poll of its
end. ``--first-poll 0`` polls from the start, as before. The median polls per run are printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from graph_overhead import chain, iterate
from server_path import Server, _checkout_path, in_process_host, run_in_process, run_through_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=25, help="runs per side")
    parser.add_argument("--nodes", type=int, default=1_000, help="the chain's length")
    parser.add_argument("--iterate", type=int, metavar="ITEMS",
                        help="run the iterate graph over this many items instead of the chain")
    parser.add_argument("--poll", type=float, default=0.005, help="least seconds between batch-status polls")
    parser.add_argument("--first-poll", type=float, default=0.8,
                        help="first poll after this fraction of the server's median wall time so far (0: at once)")
    parser.add_argument("--compare-with", type=Path, metavar="CHECKOUT", help="also a server from another checkout")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the in-process host has no storage backend and says so
    graph = iterate(args.iterate) if args.iterate else chain(args.nodes)
    what = f"iterate over {args.iterate:,}" if args.iterate else f"chain of {args.nodes:,} add"
    host = in_process_host()
    wanted: dict[str, dict[str, str] | None] = {"this checkout": None}
    if args.compare_with is not None:
        wanted[f"checkout {args.compare_with}"] = {"PYTHONPATH": _checkout_path(args.compare_with)}
    runs: dict[str, list[tuple[float, float, float, float, int]]] = {"in-process": []}
    walls: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        servers: dict[str, Server] = {}
        clients: dict[str, httpx.Client] = {}
        try:
            for n, (label, env) in enumerate(wanted.items()):
                (Path(tmp) / str(n)).mkdir()
                servers[label] = Server(Path(tmp) / str(n), env=env)
                clients[label] = httpx.Client(base_url=servers[label].url, timeout=600)
                runs[label] = []
                walls[label] = []
                for _ in range(3):  # warm-ups: lazy imports, the output cache
                    walls[label].append(run_through_server(clients[label], graph, args.poll, 600).seconds)
            for _ in range(2):
                run_in_process(host, graph)
            labels = list(servers)
            for i in range(args.repeats):
                seconds, _, cpu = run_in_process(host, graph)
                runs["in-process"].append((seconds, cpu, 0.0, 0.0, 0))
                for label in labels if i % 2 == 0 else labels[::-1]:
                    first = args.first_poll * statistics.median(walls[label])
                    r = run_through_server(clients[label], graph, args.poll, 600, servers[label].process.pid, first)
                    walls[label].append(r.seconds)
                    runs[label].append((r.seconds, r.cpu_seconds, r.run_seconds, r.get_seconds, r.polls))
        finally:
            for client in clients.values():
                client.close()
            for server in servers.values():
                server.close()
    mine_wall = statistics.median(r[0] for r in runs["in-process"])
    mine_cpu = statistics.median(r[1] for r in runs["in-process"])
    print(f"{what}, {args.repeats} runs per side, medians (min); first poll after "
          f"{args.first_poll:g} x the server's median wall time so far")
    print(f"{'side':32} {'wall s':>15} {'ratio':>6} {'CPU s':>15} {'ratio':>6} {'run s':>7} {'GET s':>7} "
          f"{'polls':>5}")
    for label, rows in runs.items():
        wall, cpu = [r[0] for r in rows], [r[1] for r in rows]
        print(f"{label:32} {statistics.median(wall):7.3f} ({min(wall):.3f}) "
              f"{statistics.median(wall) / mine_wall:5.2f}x {statistics.median(cpu):7.3f} ({min(cpu):.3f}) "
              f"{statistics.median(cpu) / mine_cpu:5.2f}x {statistics.median(r[2] for r in rows):7.3f} "
              f"{statistics.median(r[3] for r in rows):7.3f} {statistics.median(r[4] for r in rows):5.0f}")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
