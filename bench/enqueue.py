"""Enqueue throughput: one batch that expands to 10,000 items, and 1,000 single-item batches.

Runs through the real HTTP API (uvicorn on 127.0.0.1, the SQLite backend in a temp folder) and,
as the baseline in the same run, writes the same rows with plain ``sqlite3`` into a database of
the same schema (no HTTP, no validation, no events). Prints items/s and the ratio.

    .venv/bin/python bench/enqueue.py
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import invoke_sqlite_storage.plugin as sqlite_plugin
from invoke_sdk import BaseInvocation, BaseInvocationOutput, InputField, OutputField, hookimpl, invocation_output
from invoke_sdk import invocation as node
from invoke_sqlite_storage.migrations import MIGRATIONS
from invoke_sqlite_storage.migrator import migrate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.queue.live_server import live_server

Q = "/api/v1/queue/bench"


@invocation_output("bench_int_output")
class IntOutput(BaseInvocationOutput):
    value: int = OutputField()


@node("bench_add")
class AddInvocation(BaseInvocation):
    a: int = InputField(default=0)
    b: int = InputField(default=0)

    def invoke(self, context: object) -> IntOutput:  # type: ignore[override]
        return IntOutput(value=self.a + self.b)


class Nodes:
    @hookimpl
    def register_invocations(self, register: object) -> None:
        register(AddInvocation)  # type: ignore[operator]


GRAPH = {"nodes": {"add": {"id": "add", "type": "bench_add", "a": 1}}, "edges": []}


def _baseline(root: Path, batches: list[int]) -> float:
    """Items/s writing the same rows with plain sqlite3, one transaction per batch."""
    root.mkdir(parents=True)
    path = root / "baseline.db"
    migrate(path, MIGRATIONS, root / "backups")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    start = time.perf_counter()
    next_id = 1
    for size in batches:
        batch_id = uuid.uuid4().hex
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO batches (batch_id, queue_id, runs, requested) VALUES (?, 'bench', 1, ?)", (batch_id, size)
        )
        rows = []
        for i in range(size):
            session_id = uuid.uuid4().hex
            graph = {**GRAPH, "nodes": {"add": {**GRAPH["nodes"]["add"], "b": i}}}  # type: ignore[dict-item]
            session = json.dumps({"id": session_id, "batch_id": batch_id, "graph": graph})
            values = json.dumps([{"node_path": "add", "field_name": "b", "value": i}])
            rows.append((next_id, "bench", batch_id, session_id, 0, values, session))
            next_id += 1
        conn.executemany(
            "INSERT INTO queue_items (item_id, queue_id, batch_id, session_id, priority, field_values, session) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return sum(batches) / elapsed


def _batch(size: int) -> dict[str, object]:
    return {"batch": {"graph": GRAPH, "data": [[{"node_path": "add", "field_name": "b", "items": list(range(size))}]]}}


def main() -> None:
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        app = create_app(
            HostConfig(root=root / "host", log_level="WARNING"),
            plugins=[("sqlite_storage", sqlite_plugin), ("nodes", Nodes())],
            entry_points=False,
        )
        with live_server(app) as url, httpx.Client(base_url=url, timeout=600) as client:
            start = time.perf_counter()
            r = client.post(f"{Q}/enqueue_batch", json=_batch(10_000))
            big = time.perf_counter() - start
            assert r.status_code == 201 and r.json()["enqueued"] == 10_000, r.text
            start = time.perf_counter()
            for _ in range(1_000):
                r = client.post(f"{Q}/enqueue_batch", json=_batch(1))
                assert r.status_code == 201, r.text
            small = time.perf_counter() - start
        base_big = _baseline(root / "b1", [10_000])
        base_small = _baseline(root / "b2", [1] * 1_000)
    print(
        f"one batch of 10,000 items:  {10_000 / big:10.0f} items/s via HTTP; plain sqlite3 {base_big:10.0f} items/s;"
        f" ratio {base_big / (10_000 / big):.2f}x"
    )
    print(
        f"1,000 single-item batches:  {1_000 / small:10.0f} items/s via HTTP; plain sqlite3 {base_small:10.0f}"
        f" items/s; ratio {base_small / (1_000 / small):.2f}x"
    )


if __name__ == "__main__":
    main()
