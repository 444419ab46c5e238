"""Migration 5: sessions stored as one JSON blob become rows, and the file moves to incremental auto-vacuum."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from invoke_sdk.session_queue import SessionNodeError, SessionNodeResult
from invoke_sqlite_storage import SqliteBackend
from invoke_sqlite_storage.migrations import MIGRATIONS

from tests.storage.conftest import make_batch

BEFORE_ROWS = MIGRATIONS[:4]
GRAPH = {"nodes": {"r": {"id": "r", "type": "range"}, "it": {"id": "it", "type": "iterate"},
                   "add": {"id": "add", "type": "add"}}, "edges": []}


def _exec(node_id: str, path: list[int]) -> dict[str, object]:
    source = node_id.split("#")[0]
    return {"id": node_id, "source_id": source, "iter_map": {}, "path": path, "inputs": [], "index": None}


def _old_session(session_id: str, batch_id: str) -> dict[str, object]:
    """A session as the processor saved it before migration 5 (queue/session_record.py, now gone)."""
    history = ["r#0", "it#0", "add#0", "it#1", "add#1"]
    paths = {"r#0": [], "it#0": [0], "add#0": [0], "it#1": [1], "add#1": [1], "add#2": [2]}
    return {
        "id": session_id, "batch_id": batch_id, "graph": GRAPH,
        "prepared_sources": ["r", "it", "add"],
        "exec_nodes": [_exec(n, p) for n, p in paths.items()],
        "executed_history": history,
        "results": {
            "add#1": {"type": "integer_output", "value": 11},  # saved out of order: seq comes from the history
            "r#0": {"type": "integer_collection_output", "collection": [10, 11, 12]},
            "it#0": {"type": "iterate_output", "item": 10, "index": 0, "total": 3},
            "add#0": {"type": "integer_output", "value": 10},
            "it#1": {"type": "iterate_output", "item": 11, "index": 1, "total": 3},
        },
        "errors": {"add#2": {"node_id": "add#2", "source_node_id": "add", "error_type": "ValueError",
                             "message": "no", "traceback": "Traceback ...", "field": None}},
        "source_results": {"r": ["r#0"], "it": ["it#0", "it#1"], "add": ["add#0", "add#1"]},
        "source_errors": {"add": ["add#2"]},
    }


async def test_stored_sessions_become_rows_and_keep_only_what_was_enqueued(tmp_path: Path) -> None:
    path = tmp_path / "invoke.db"
    old = SqliteBackend(path, migrations=BEFORE_ROWS)
    await old.start()
    batch, items = make_batch(n=2)
    ran, waiting = (await old.session_queue.enqueue(batch, items, prepend=False)).item_ids
    await old.stop()
    session = _old_session(items[0].session_id, batch.batch_id)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE queue_items SET session = ?, status = 'failed' WHERE item_id = ?", (json.dumps(session), ran))
    conn.execute("PRAGMA auto_vacuum=NONE")  # as every database made before migration 5 was
    conn.execute("VACUUM")
    assert conn.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    conn.close()

    backend = SqliteBackend(path)
    await backend.start()
    try:
        store = backend.session_queue
        rows = await store.list_results(ran, limit=100)
        assert [(r.seq, r.node_id, r.source_node_id, r.path) for r in rows] == [
            (0, "r#0", "r", ()), (1, "it#0", "it", (0,)), (2, "add#0", "add", (0,)),
            (3, "it#1", "it", (1,)), (4, "add#1", "add", (1,))]
        assert rows[4] == SessionNodeResult(4, "add#1", "add", (1,), '{"type":"integer_output","value":11}')
        assert await store.list_errors(ran) == [
            SessionNodeError("add#2", "add", "ValueError", "no", "Traceback ...", None)]
        item = await store.get(ran)
        assert item is not None and item.session == {"id": session["id"], "batch_id": batch.batch_id, "graph": GRAPH}
        untouched = await store.get(waiting)
        assert untouched is not None and untouched.session == json.loads(items[1].session_json)
        assert await store.list_results(waiting, limit=10) == []
    finally:
        await backend.stop()
    with sqlite3.connect(path) as conn:
        # The one VACUUM after the migration switched the file, so prunes give space back from now on.
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)
        assert [v for (v,) in conn.execute("SELECT version FROM migrations ORDER BY version")] == list(range(1, 9))
    assert any(p.name.startswith("invoke-v4-before-v8") for p in (tmp_path / "backups").iterdir())


async def test_a_new_database_starts_in_incremental_auto_vacuum(tmp_path: Path) -> None:
    path = tmp_path / "invoke.db"
    backend = SqliteBackend(path)
    await backend.start()
    await backend.stop()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
