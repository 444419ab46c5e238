"""Cross-node event latency: an event emitted on a worker until a websocket client of an API node has it.

Three processes on one machine and one PostgreSQL (started here in a temp folder, as the tests do, or
``--database-url``): a worker node (``build_host(shape=WORKER)``, SQLite for its own items) whose emitter thread
emits events onto its bus as node code does, at a steady rate; an API node (``shape=API``, uvicorn on 127.0.0.1)
serving ``/ws``; and this process, a ``websockets`` client subscribed to the queue on the API node. Latency is the
client's receive time less the event's ``timestamp`` (set when the worker built it; one clock, one machine).

The baseline, measured in the same run at the same rate: plain ``pg_notify`` from one psycopg connection to a
``LISTEN`` on another (the floor any LISTEN/NOTIFY design stands on). Each case reports p50, p99 and the most, the
CPU each node process spent per event (from ``/proc``, Linux) and the machine's load average: on a shared machine
the tail is mostly waiting for a core.

    .venv/bin/python bench/cross_node_events.py                       # 200 events/s for 10 s, small and 20 kB
    .venv/bin/python bench/cross_node_events.py --rate 2000 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import invoke_core_events.plugin as core_events_plugin
import invoke_local_file_storage.plugin as files_plugin
import invoke_postgres_events.plugin as pg_events_plugin
import invoke_postgres_storage.plugin as pg_storage_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import psycopg
import websockets
from invoke_postgres_events.interest import POLL_S as INTEREST_POLL_S
from invoke_postgres_events.interest import TABLE as INTEREST_TABLE
from invoke_sdk.events import InvocationProgressEvent

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from invoke_host.config import HostConfig
from invoke_host.host import NodeShape, build_host
from tests.postgres_server import _free_port, start_postgres

# The PostgreSQL storage backend too: since the queue runs on PostgreSQL a worker node refuses to start without it.
PLUGINS = [sqlite_plugin, pg_storage_plugin, files_plugin, core_events_plugin, pg_events_plugin]
QUEUE = "bench"


def _event(n: int, padding: int) -> InvocationProgressEvent:
    return InvocationProgressEvent(
        queue_id=QUEUE, item_id=n, batch_id="b" * 32, session_id="s" * 32, invocation_id=f"denoise-{n}",
        invocation_source_id="denoise", invocation_type="denoise_latents", invocation={"id": "denoise", "steps": 30},
        message="x" * padding or f"step {n}", percentage=0.5,
    )


def _api_node(url: str, root: str, port: int, ready: Any) -> None:
    import uvicorn  # only the API node's process serves HTTP

    from invoke_host.app import create_app

    logging.basicConfig(level=logging.WARNING)
    host = build_host(HostConfig(root=Path(root), database_url=url), PLUGINS, entry_points=False,
                      shape=NodeShape.API)
    config = uvicorn.Config(create_app(host=host), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", ws_per_message_deflate=False)  # as `invoke-host serve` runs it
    server = uvicorn.Server(config)
    threading.Thread(target=lambda: (_wait_started(server), ready.set()), daemon=True).start()
    server.run()


def _wait_started(server: Any) -> None:
    while not server.started:
        time.sleep(0.01)


def _worker_node(url: str, root: str, ready: Any, go: Any, done: Any, rate: float, count: int, padding: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    host = build_host(HostConfig(root=Path(root), database_url=url), PLUGINS, entry_points=False,
                      shape=NodeShape.WORKER)
    # Its bus is what is measured: an idle processor would only poll its empty queue.
    host.services = [s for s in host.services if s not in host.processors]
    host.processors.clear()

    async def main() -> None:
        await host.start()
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        # Emitted from a thread, as node code emits (the bus hands it to the loop).
        await asyncio.get_running_loop().run_in_executor(None, _emit, host, rate, count, padding)
        await asyncio.get_running_loop().run_in_executor(None, done.wait)
        await host.stop()

    asyncio.run(main())


def _emit(host: Any, rate: float, count: int, padding: int) -> None:
    start = time.perf_counter()
    for n in range(count):
        wait = start + n / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        host.events.emit(_event(n, padding))


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _through_nodes(url: str, tmp: Path, rate: float, count: int, padding: int) -> tuple[list[float], str]:
    ctx = multiprocessing.get_context("spawn")
    port = _free_port()
    api_ready, worker_ready, go, done = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
    api = ctx.Process(target=_api_node, args=(url, str(tmp / f"api-{padding}"), port, api_ready), daemon=True)
    worker = ctx.Process(target=_worker_node, daemon=True,
                         args=(url, str(tmp / f"worker-{padding}"), worker_ready, go, done, rate, count, padding))
    api.start()
    worker.start()
    try:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, api_ready.wait, 60)
        await loop.run_in_executor(None, worker_ready.wait, 60)
        latencies: list[float] = []
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", compression=None, max_size=None) as ws:
            await ws.send(json.dumps({"subscribe": "queue", "queue_id": QUEUE}))
            assert json.loads(await ws.recv())["event"] == "subscribed"
            await _interest_known(url)
            assert worker.pid is not None and api.pid is not None
            cpu = (_cpu_s(worker.pid), _cpu_s(api.pid), time.process_time())
            go.set()
            deadline = time.time() + count / rate + 30
            while len(latencies) < count and time.time() < deadline:
                try:
                    raw = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.time()))
                except TimeoutError:
                    break
                now = time.time()
                message = json.loads(raw)
                if message["event"] == InvocationProgressEvent.event_name:
                    latencies.append(now - message["data"]["timestamp"])
            used = [_cpu_s(worker.pid) - cpu[0], _cpu_s(api.pid) - cpu[1], time.process_time() - cpu[2]]
        per_event = "  ".join(f"{name} {1e6 * spent / max(1, len(latencies)):.0f} us"
                              for name, spent in zip(("worker", "API node", "client"), used, strict=True))
        return latencies, f"CPU per event: {per_event}"
    finally:
        done.set()
        worker.join(30)
        api.terminate()
        api.join(30)


async def _interest_known(url: str) -> None:
    """Wait until the API node's row says its client wants per-node events, and the worker had time to read it
    (invoke_postgres_events.interest: until then a worker does not send them)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for _ in range(100):
            cursor = await conn.execute(f"SELECT count(*) FROM {INTEREST_TABLE} WHERE %s = ANY(names)",
                                        (InvocationProgressEvent.event_name,))
            row = await cursor.fetchone()
            if row is not None and row[0]:
                break
            await asyncio.sleep(0.1)
    await asyncio.sleep(2 * INTEREST_POLL_S)


async def _raw_notify(url: str, rate: float, count: int, padding: int) -> list[float]:
    """The floor: pg_notify on one connection, LISTEN on another, payload the sending time."""
    latencies: list[float] = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as listen, \
            await psycopg.AsyncConnection.connect(url, autocommit=True) as send:
        await listen.execute("LISTEN bench_raw")

        async def receive() -> None:
            async for note in listen.notifies():
                latencies.append(time.time() - float(note.payload.split(" ", 1)[0]))
                if len(latencies) >= count:
                    return

        receiver = asyncio.create_task(receive())
        pad = "x" * min(padding, 7000)
        start = time.perf_counter()
        for n in range(count):
            wait = start + n / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            await send.execute("SELECT pg_notify('bench_raw', %s)", (f"{time.time()} {pad}",))
        await asyncio.wait_for(receiver, 30)
    return latencies


def _summary(latencies: list[float], count: int) -> str:
    if not latencies:
        return f"nothing arrived of {count}"
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (f"p50 {statistics.median(ms):6.2f} ms  p99 {p99:6.2f} ms  max {ms[-1]:7.2f} ms  "
            f"({len(ms)}/{count} arrived)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--database-url", help="an existing PostgreSQL database (default: start one here)")
    args = parser.parse_args()
    count = int(args.rate * args.seconds)
    tmp = Path(tempfile.mkdtemp(prefix="cross-node-"))
    server = None
    if args.database_url:
        url = args.database_url
    else:
        tmp.chmod(0o755)
        (tmp / "pg").mkdir()
        (tmp / "pg").chmod(0o755)
        server = start_postgres(tmp / "pg")
        url = server.url()
    try:
        print(f"{count} events at {args.rate:g}/s; latency from the worker's emit to the API node's websocket client")
        # The 20 kB case twice: the first one also pays for the outbox table's growth from empty.
        for label, padding in (("small (~400 B)", 0), ("20 kB (outbox)", 20_000), ("20 kB again", 20_000)):
            raw = asyncio.run(_raw_notify(url, args.rate, count, padding))
            print(f"  {label:16} raw NOTIFY->LISTEN  {_summary(raw, count)}")
            through, cpu = asyncio.run(_through_nodes(url, tmp, args.rate, count, padding))
            print(f"  {label:16} worker->API ws     {_summary(through, count)}")
            print(f"  {'':16} {cpu}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
