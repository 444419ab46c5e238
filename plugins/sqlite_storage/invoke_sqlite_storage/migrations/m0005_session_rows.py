"""Migration 5: session progress as rows (results and node errors), no longer one JSON blob per item.

Until now a running item's whole session (graph, engine bookkeeping, every result) was rewritten as one JSON
document in ``queue_items.session`` every half second. From here the ``session`` column keeps only the session
as enqueued (``id``, ``batch_id``, ``graph``), and what the session produces is appended: one row per node
result in ``session_results``, one per node error in ``session_errors``. Existing sessions are converted:
their results and errors become rows (``seq`` from ``executed_history``, the path from ``exec_nodes``), and the
engine bookkeeping (``prepared_sources``, ``exec_nodes``, ...) is dropped, since it is rebuilt from the results.

The file is switched to incremental auto-vacuum after this migration (``migrator.ensure_incremental_vacuum``):
that needs a VACUUM, which SQLite cannot run inside the migration's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from invoke_sqlite_storage.migrator import Migration
from invoke_sqlite_storage.session_rows import path_key

__all__ = ["MIGRATION"]


def _convert(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT item_id, session FROM queue_items WHERE session LIKE '%\"results\"%'").fetchall()
    for item_id, text in rows:
        try:
            session: dict[str, Any] = json.loads(text)
        except ValueError:
            continue  # not ours to judge: left as it is
        if not isinstance(session, dict) or not isinstance(session.get("results"), dict):
            continue
        nodes = {n["id"]: n for n in session.get("exec_nodes", ()) if isinstance(n, dict) and "id" in n}
        order = {node_id: i for i, node_id in enumerate(session.get("executed_history", ()))}
        results = session["results"]
        saved = {node_id: i for i, node_id in enumerate(results)}
        # Results missing from the history (there should be none) go after it, in the order they were saved.
        ranked = sorted(results, key=lambda n: (order.get(n, len(order)), saved[n]))
        conn.executemany(
            "INSERT OR IGNORE INTO session_results (item_id, seq, node_id, source_node_id, path, output) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    item_id,
                    seq,
                    node_id,
                    nodes.get(node_id, {}).get("source_id", node_id.rsplit("#", 1)[0]),
                    path_key(tuple(nodes.get(node_id, {}).get("path", ()))),
                    json.dumps(results[node_id], separators=(",", ":")),
                )
                for seq, node_id in enumerate(ranked)
            ],
        )
        errors = session.get("errors") or {}
        conn.executemany(
            "INSERT OR IGNORE INTO session_errors "
            "(item_id, node_id, source_node_id, error_type, message, traceback, field) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (item_id, node_id, e.get("source_node_id", node_id.rsplit("#", 1)[0]), e.get("error_type", ""),
                 e.get("message", ""), e.get("traceback", ""), e.get("field"))
                for node_id, e in errors.items()
                if isinstance(e, dict)
            ],
        )
        enqueued = {k: session[k] for k in ("id", "batch_id", "graph") if k in session}
        conn.execute(
            "UPDATE queue_items SET session = ? WHERE item_id = ?",
            (json.dumps(enqueued, separators=(",", ":")), item_id),
        )


MIGRATION = Migration(
    version=5,
    description="session queue: results and node errors as rows",
    statements=(
        # WITHOUT ROWID: the primary key is the table, so each appended result costs two b-tree inserts (the
        # table and one index) instead of three; rows are appended in key order within an item.
        """CREATE TABLE session_results (
            item_id INTEGER NOT NULL REFERENCES queue_items (item_id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            node_id TEXT NOT NULL,
            source_node_id TEXT NOT NULL,
            path TEXT NOT NULL,
            output TEXT NOT NULL,
            PRIMARY KEY (item_id, seq)
        ) WITHOUT ROWID""",
        # One source node's results in iteration order, page by page; and one row per node instance, whatever
        # writes it twice (a retried append, a retried item). An instance is its source node and iteration path:
        # the engine makes one instance per combination of the iterates above a node, and the path (the index
        # of each) tells them apart, however the engine numbered them in node_id. (A unique index on node_id
        # as well made each append cost about 40% more, measured.)
        "CREATE UNIQUE INDEX idx_session_results_source ON session_results (item_id, source_node_id, path)",
        """CREATE TABLE session_errors (
            item_id INTEGER NOT NULL REFERENCES queue_items (item_id) ON DELETE CASCADE,
            node_id TEXT NOT NULL,
            source_node_id TEXT NOT NULL,
            error_type TEXT NOT NULL,
            message TEXT NOT NULL,
            traceback TEXT NOT NULL,
            field TEXT,
            PRIMARY KEY (item_id, node_id)
        )""",
    ),
    apply=_convert,
)
