"""Scale-out on one PostgreSQL: items/s with 1, 2 and 4 worker processes against one SQLite server, in one run.

    .venv/bin/python bench/scaleout.py                         # 40 items of a 1,000-add chain; 3-4 minutes
    .venv/bin/python bench/scaleout.py --items 80 --nodes 4000 --workers 1 2 4 8

Every case runs the same batch: ``--items`` queue items of one CPU-bound graph (a chain of ``--nodes`` ``add``
nodes, no models, no images), enqueued over HTTP in one ``enqueue_batch`` with ``runs``. The baseline is one
all-in-one ``invoke-host serve`` on SQLite (its one processor runs them). Each scale-out case is a fresh database on
one PostgreSQL (started here in a temp folder, as the tests start theirs), an API node (``serve --no-processor``)
and N ``invoke-host worker`` processes, every one a child process started the way a user starts it. Each case first
runs a warm-up batch of one item per worker (lazy imports), then the measured batch.

Figures, all from what the server recorded (``GET /list``), so start-up and polling of this process do not count:

- items/s: items / (last ``completed_at`` - first ``started_at``). Workers poll for items another node enqueued
  every ``INVOKE_HOST_WORKER_POLL_INTERVAL_S``; it is 0.1 s here so they all start within 0.1 s of each other.
- claim gap: on one worker, an item's ``completed_at`` to that worker's next ``started_at`` (the finish write, the
  loop, the claim: the per-item overhead of the queue), p50 / p99 over all workers.
- CPU per item: user + system CPU of the worker processes (the SQLite server's, for the baseline), of the API node
  and of PostgreSQL's processes over the measured batch, from /proc (Linux). With the CPU per item and the run time
  per item, ``cores used`` = CPU / wall says whether a case was short of cores: on a machine shared with other work,
  ``others`` is the machine's busy core-seconds (/proc/stat) less ours, in cores, over the same window.

The claim overhead is also timed straight against each backend's store, in this process with no processor and no
HTTP: ``--claims`` items (each holding the chain's session JSON) taken one by one with ``claim_next`` + ``finish``.

Then the cross-node event latency of ``bench/cross_node_events.py`` (its functions, on the same PostgreSQL):
``--event-rate`` events/s for ``--event-seconds``, worker node -> API node's websocket client, against plain NOTIFY.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
from invoke_postgres_storage import PostgresBackend
from invoke_sdk.session_queue import BatchRecord, NewQueueItem
from invoke_sqlite_storage import SqliteBackend

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cross_node_events import _raw_notify, _summary, _through_nodes
from graph_overhead import chain
from server_path import Server

from tests.postgres_server import PostgresServer, start_postgres

Q = "/api/v1/queue/bench"


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """Busy core-seconds of the whole machine since boot (all but idle and iowait), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _postgres_pids(pg: PostgresServer) -> list[int]:
    """The postmaster and its children (the backends serving our nodes)."""
    postmaster = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return [postmaster, *(int(c) for c in children)]


@dataclass
class Case:
    label: str
    processes: int
    items_per_s: float
    window_s: float
    gaps_ms: list[float]
    cpu_item_ms: dict[str, float]
    others_cores: float
    load: float


class Workers:
    """N ``invoke-host worker`` processes on one database, each with its log in ``root``."""

    def __init__(self, root: Path, count: int, env: dict[str, str]) -> None:
        cli = Path(sys.executable).with_name("invoke-host")
        self.logs = [root / f"worker-{n}.log" for n in range(count)]
        self._files = [log.open("wb") for log in self.logs]
        self.processes = [
            subprocess.Popen([str(cli), "worker", "--name", f"w{n}", "--root", str(root / "data")],
                             stdout=f, stderr=subprocess.STDOUT, env=env)
            for n, f in enumerate(self._files)
        ]
        deadline = time.monotonic() + 120
        for process, log in zip(self.processes, self.logs, strict=True):
            while b"Worker running" not in log.read_bytes():
                if process.poll() is not None:
                    raise RuntimeError(f"a worker exited with {process.returncode}: {log.read_text()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"a worker did not start within 120 s: {log.read_text()}")
                time.sleep(0.1)

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for f in self._files:
            f.close()


def _run_batch(client: httpx.Client, graph: dict[str, Any], items: int, timeout: float) -> list[dict[str, Any]]:
    """Enqueue ``items`` runs of ``graph``, wait until all are finished; their summaries as the server has them."""
    r = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph, "runs": items}})
    assert r.status_code == 201, r.text
    batch_id = r.json()["batch"]["batch_id"]
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"{Q}/b/{batch_id}/status").json()
        if status["completed"] + status["failed"] + status["canceled"] == items:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id} did not finish within {timeout:.0f} s: {status}")
        time.sleep(0.2)  # a poll costs the API node little; the items take seconds
    got: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{Q}/list", params=params).json()
        got += [item for item in page["items"] if item["batch_id"] == batch_id]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    bad = [(i["item_id"], i["status"], i["error_message"]) for i in got if i["status"] != "completed"]
    assert len(got) == items and not bad, (len(got), bad[:3])
    return got


def _figures(items: list[dict[str, Any]]) -> tuple[float, float, list[float]]:
    """(items/s, window seconds, claim gaps in ms) from the items' recorded times."""
    start = {i["item_id"]: datetime.fromisoformat(i["started_at"]) for i in items}
    end = {i["item_id"]: datetime.fromisoformat(i["completed_at"]) for i in items}
    window = (max(end.values()) - min(start.values())).total_seconds()
    gaps: list[float] = []
    for worker in {i["worker_id"] for i in items}:
        mine = sorted((i["item_id"] for i in items if i["worker_id"] == worker), key=lambda n: start[n])
        gaps += [(start[b] - end[a]).total_seconds() * 1000 for a, b in pairwise(mine)]
    return len(items) / window, window, gaps


def _measure(label: str, processes: int, client: httpx.Client, graph: dict[str, Any], items: int, timeout: float,
             pids: dict[str, list[int]]) -> Case:
    _run_batch(client, graph, max(1, processes), timeout)  # warm-up: every worker's lazy imports
    before = {name: sum(_cpu_s(p) for p in group) for name, group in pids.items()}
    busy = _machine_busy_s()
    wall = time.monotonic()
    done = _run_batch(client, graph, items, timeout)
    wall = time.monotonic() - wall
    busy = _machine_busy_s() - busy
    spent = {name: sum(_cpu_s(p) for p in group) - before[name] for name, group in pids.items()}
    rate, window, gaps = _figures(done)
    others = max(0.0, busy - sum(spent.values())) / wall  # this process's polls are a rounding error
    return Case(label, processes, rate, window, gaps, {k: 1000 * v / items for k, v in spent.items()}, others,
                os.getloadavg()[0])


async def _claim_loop(backend: Any, session_json: str, count: int) -> list[float]:
    """Milliseconds of ``claim_next`` + ``finish`` per item, straight against one backend's store, one claimer."""
    await backend.start()
    try:
        store = backend.session_queue
        batch = BatchRecord(batch_id=uuid.uuid4().hex, queue_id="bench", requested=count)
        await store.enqueue(batch, [NewQueueItem(session_id=uuid.uuid4().hex, session_json=session_json)
                                    for _ in range(count)], prepend=False)
        took: list[float] = []
        for _ in range(count):
            start = time.perf_counter()
            item = await store.claim_next("bench", worker_id="bench")
            assert item is not None
            await store.finish(item.item_id, "completed", worker_id="bench")
            took.append(1000 * (time.perf_counter() - start))
        return took
    finally:
        await backend.stop()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def _report(cases: list[Case], items: int, nodes: int) -> None:
    print(f"\n{items} items of a chain of {nodes} add; {os.cpu_count()} cores")
    print(f"{'case':26} {'items/s':>8} {'x 1 worker':>10} {'x SQLite':>8} {'claim gap p50/p99 ms':>21} "
          f"{'CPU/item ms: run API PG':>24} {'cores used':>10} {'others':>6} {'load':>5}")
    sqlite = next(c for c in cases if c.processes == 0)
    one = next((c for c in cases if c.processes == 1), None)
    for c in cases:
        versus_one = f"{c.items_per_s / one.items_per_s:.2f}" if one and c.processes else "-"
        cpu = c.cpu_item_ms
        used = sum(cpu.values()) * items / 1000 / c.window_s
        print(f"{c.label:26} {c.items_per_s:>8.2f} {versus_one:>10} {c.items_per_s / sqlite.items_per_s:>8.2f} "
              f"{statistics.median(c.gaps_ms) if c.gaps_ms else float('nan'):>10.1f} / "
              f"{_pct(c.gaps_ms, 0.99):>8.1f} "
              f"{cpu['run']:>9.0f} {cpu.get('API', 0):>6.0f} {cpu.get('PG', 0):>6.0f} {used:>10.2f} "
              f"{c.others_cores:>6.2f} {c.load:>5.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=40, help="items in the measured batch")
    parser.add_argument("--nodes", type=int, default=1000, help="add nodes in the chain each item runs")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts to measure")
    parser.add_argument("--timeout", type=float, default=600, help="longest wait for one batch")
    parser.add_argument("--claims", type=int, default=200, help="items of the straight claim + finish loop")
    parser.add_argument("--event-rate", type=float, default=200.0, help="events/s for the event latency")
    parser.add_argument("--event-seconds", type=float, default=5.0, help="0: skip the event latency")
    args = parser.parse_args()
    graph = chain(args.nodes)
    limits = {"INVOKE_HOST_MAX_SESSION_NODES": str(max(10_000, 2 * args.nodes)),
              "INVOKE_HOST_WORKER_POLL_INTERVAL_S": "0.1"}
    tmp = Path(tempfile.mkdtemp(prefix="scaleout-"))
    tmp.chmod(0o755)  # PostgreSQL runs as another user when this runs as root
    (tmp / "pg").mkdir()
    (tmp / "pg").chmod(0o755)
    pg = start_postgres(tmp / "pg")
    cases: list[Case] = []
    try:
        (tmp / "sqlite").mkdir()
        server = Server(tmp / "sqlite", env=limits)
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                cases.append(_measure("SQLite, all-in-one serve", 0, client, graph, args.items, args.timeout,
                                      {"run": [server.process.pid]}))
        finally:
            server.close()
        for count in args.workers:
            root = tmp / f"pg-{count}"
            root.mkdir()
            env = {**limits, "INVOKE_HOST_DATABASE_URL": pg.url(pg.create_database())}
            api = Server(root, env={**env, "INVOKE_HOST_PROCESSOR_ENABLED": "false"})
            workers = None
            try:
                workers = Workers(root, count, {**os.environ, **env, "INVOKE_HOST_LOG_LEVEL": "INFO"})
                pids = {"run": [p.pid for p in workers.processes], "API": [api.process.pid], "PG": _postgres_pids(pg)}
                with httpx.Client(base_url=api.url, timeout=60) as client:
                    label = f"PostgreSQL, {count} worker{'s' if count > 1 else ''}"
                    cases.append(_measure(label, count, client, graph, args.items, args.timeout, pids))
            finally:
                if workers is not None:
                    workers.close()
                api.close()
        _report(cases, args.items, args.nodes)
        session_json = json.dumps({"id": uuid.uuid4().hex, "graph": graph})  # about the size a real item stores
        print(f"\nclaim_next + finish straight against the store, one claimer, {args.claims} items of "
              f"{len(session_json) / 1000:.0f} kB (no processor, no HTTP):")
        (tmp / "claims").mkdir()
        for name, backend in (("SQLite", SqliteBackend(tmp / "claims" / "claims.db")),
                              ("PostgreSQL", PostgresBackend(pg.url(pg.create_database())))):
            took = asyncio.run(_claim_loop(backend, session_json, args.claims))
            print(f"  {name:10} p50 {statistics.median(took):6.2f} ms  p99 {_pct(took, 0.99):6.2f} ms  "
                  f"mean {statistics.fmean(took):6.2f} ms")
        if args.event_seconds > 0:
            count = int(args.event_rate * args.event_seconds)
            url = pg.url(pg.create_database())
            print(f"\ncross-node events ({count} at {args.event_rate:g}/s, ~400 B; bench/cross_node_events.py):")
            print(f"  raw NOTIFY->LISTEN  {_summary(asyncio.run(_raw_notify(url, args.event_rate, count, 0)), count)}")
            through, cpu = asyncio.run(_through_nodes(url, tmp, args.event_rate, count, 0))
            print(f"  worker->API ws      {_summary(through, count)}")
            print(f"  {cpu}; load average {os.getloadavg()[0]:.1f}")
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
