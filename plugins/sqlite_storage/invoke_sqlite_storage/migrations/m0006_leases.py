"""Migration 6: claims with leases, attempts, the item's main model, and per-queue state (pause).

A claimed item records its worker (``worker_id``), when its lease ends (``lease_expires_at``, text in the same
form as the other timestamps, so comparing text compares times) and how many claims it had (``attempts``); an
expired lease sends the item back to ``pending`` or fails it (``SqliteSessionQueueStore.reclaim_expired``).
``model_key`` is the item's main model, which a worker's claim prefers when it holds that model already.
``queue_state`` keeps whether a queue is paused, for every process on the file and across restarts.

Items that were ``in_progress`` before this migration had no lease: they get one that has already ended, so the
first reclaim takes them back (one attempt counted), instead of leaving them running for ever.
"""

from __future__ import annotations

from invoke_sqlite_storage.migrator import Migration

__all__ = ["MIGRATION"]

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

MIGRATION = Migration(
    version=6,
    description="session queue: leases, attempts, main model key, queue state",
    statements=(
        "ALTER TABLE queue_items ADD COLUMN worker_id TEXT",
        "ALTER TABLE queue_items ADD COLUMN lease_expires_at TEXT",
        "ALTER TABLE queue_items ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE queue_items ADD COLUMN model_key TEXT",
        f"UPDATE queue_items SET attempts = 1, lease_expires_at = {NOW} WHERE status = 'in_progress'",
        "UPDATE queue_items SET attempts = 1 WHERE status IN ('completed', 'failed') AND started_at IS NOT NULL",
        # Reclaiming: the running items whose lease ended, without reading the others.
        "CREATE INDEX idx_queue_items_lease ON queue_items (lease_expires_at) WHERE status = 'in_progress'",
        """CREATE TABLE queue_state (
            queue_id TEXT PRIMARY KEY,
            paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1))
        )""",
    ),
)
