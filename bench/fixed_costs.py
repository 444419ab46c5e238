"""Fixed costs per node on the server path: validation at enqueue and claim, events nobody listens to, a big POST.

    .venv/bin/python bench/fixed_costs.py [--nodes 5000] [--runs 3]

A chain of ``--nodes`` ``add`` nodes, with no websocket client and the log at INFO, three ways in one run:

1. in-process: ``run_graph`` (validation, engine, no services) - the baseline;
2. through a started server (uvicorn on 127.0.0.1, SQLite, in this process): enqueue over HTTP until the
   item is completed, with the server's CPU (this process, less the polling thread) - the ratio to (1) is
   what the server path adds;
3. while that graph's POST is in flight, ``GET /api/v1/app/version`` one after another: the slowest one's
   latency against the POST's shows whether the loop was free meanwhile.

Medians of ``--runs``. Runs on any commit of the host (it uses only the public API), so the same script
measures before and after a change.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import invoke_core_events.plugin as core_events_plugin
import invoke_core_nodes.plugin as core_nodes_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.engine import OutputCache, run_graph
from invoke_host.host import build_host
from tests.queue.live_server import live_server

Q = "/api/v1/queue/bench"


def chain(n: int) -> dict[str, Any]:
    edge = {"source": {"node_id": "", "field": "value"}, "destination": {"node_id": "", "field": "a"}}
    return {"nodes": {f"n{i}": {"type": "add", "b": 1} for i in range(n)},
            "edges": [{**edge, "source": {**edge["source"], "node_id": f"n{i - 1}"},
                       "destination": {**edge["destination"], "node_id": f"n{i}"}} for i in range(1, n)]}


def in_process(graph: dict[str, Any]) -> float:
    host = build_host(plugins=[("core_nodes", core_nodes_plugin)], entry_points=False)
    start = time.perf_counter()
    result = run_graph(host, graph, cache=OutputCache())
    assert result.status == "completed"
    return time.perf_counter() - start


async def through_server(base: str, graph: dict[str, Any]) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=base, timeout=300) as http:
        cpu, mine = time.process_time(), time.thread_time()
        started = time.perf_counter()
        post = asyncio.create_task(http.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph}}))
        pings: list[float] = []
        while not post.done():  # one GET after another for as long as the POST takes: the slowest shows a stall
            ping = time.perf_counter()
            assert (await http.get("/api/v1/app/version")).status_code == 200
            pings.append(time.perf_counter() - ping)
        r = await post
        posted = time.perf_counter() - started
        r.raise_for_status()
        item_id = r.json()["item_ids"][0]
        while True:
            item = (await http.get(f"{Q}/b/{r.json()['batch']['batch_id']}/status")).json()
            if item["completed"] + item["failed"] == 1:
                break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        server_cpu = (time.process_time() - cpu) - (time.thread_time() - mine)
        done = (await http.get(f"{Q}/i/{item_id}")).json()
        assert done["status"] == "completed", done.get("error_message")
        run = (datetime.fromisoformat(done["completed_at"]) - datetime.fromisoformat(done["started_at"]))
        await http.put(f"{Q}/prune")
    return {"post": posted, "ping": max(pings), "total": elapsed, "cpu": server_cpu, "run": run.total_seconds()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    graph = chain(args.nodes)
    local: list[float] = []
    served: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = HostConfig(root=Path(tmp), max_graph_nodes=max(args.nodes, 10_000))
        app = create_app(config, [("core_nodes", core_nodes_plugin), ("sqlite", sqlite_plugin),
                                  ("core_events", core_events_plugin)], entry_points=False)
        with live_server(app) as base:
            asyncio.run(through_server(base, chain(50)))  # warm-up
            for _ in range(args.runs):  # interleaved, so load from elsewhere falls on both alike
                local.append(in_process(graph))
                served.append(asyncio.run(through_server(base, graph)))
    med = {k: statistics.median(s[k] for s in served) for k in served[0]}
    base_s = statistics.median(local)
    print(f"chain of {args.nodes} add nodes, no websocket client, medians of {args.runs}")
    print(f"in-process run_graph:              {base_s:7.3f} s")
    print(f"through the server, enqueue->done: {med['total']:7.3f} s  ({med['total'] / base_s:.2f}x in-process); "
          f"server CPU {med['cpu']:.3f} s ({med['cpu'] / base_s:.2f}x), item run {med['run']:.3f} s")
    print(f"the POST (validate, expand, store): {med['post']:7.3f} s; GETs sent one after another meanwhile: the "
          f"slowest took {med['ping'] * 1000:.1f} ms ({med['ping'] / med['post']:.0%} of the POST)")


if __name__ == "__main__":
    main()
