"""Migration 1: batches and session-queue items."""

from __future__ import annotations

from invoke_sqlite_storage.migrator import Migration

__all__ = ["MIGRATION"]

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

MIGRATION = Migration(
    version=1,
    description="session queue: batches and queue items",
    statements=(
        f"""CREATE TABLE batches (
            batch_id TEXT PRIMARY KEY,
            queue_id TEXT NOT NULL,
            runs INTEGER NOT NULL,
            requested INTEGER NOT NULL,
            origin TEXT,
            destination TEXT,
            created_at TEXT NOT NULL DEFAULT ({NOW})
        )""",
        "CREATE INDEX idx_batches_queue ON batches (queue_id)",
        f"""CREATE TABLE queue_items (
            item_id INTEGER PRIMARY KEY AUTOINCREMENT,
            queue_id TEXT NOT NULL,
            batch_id TEXT NOT NULL REFERENCES batches (batch_id) ON DELETE CASCADE,
            session_id TEXT NOT NULL UNIQUE,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'canceled')),
            priority INTEGER NOT NULL DEFAULT 0,
            field_values TEXT,
            session TEXT NOT NULL,
            error_type TEXT,
            error_message TEXT,
            error_traceback TEXT,
            created_at TEXT NOT NULL DEFAULT ({NOW}),
            updated_at TEXT NOT NULL DEFAULT ({NOW}),
            started_at TEXT,
            completed_at TEXT
        )""",
        # Claiming the next item of any queue, and of one queue; listing a queue in execution order.
        "CREATE INDEX idx_queue_items_next ON queue_items (status, priority DESC, item_id)",
        "CREATE INDEX idx_queue_items_queue_next ON queue_items (queue_id, status, priority DESC, item_id)",
        "CREATE INDEX idx_queue_items_queue_order ON queue_items (queue_id, priority DESC, item_id)",
        "CREATE INDEX idx_queue_items_batch ON queue_items (batch_id, status)",
    ),
)
