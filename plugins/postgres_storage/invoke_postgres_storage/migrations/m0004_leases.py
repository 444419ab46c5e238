"""Migration 4: claims with leases, attempts, the item's main model, and per-queue state (pause).

The same schema step as the SQLite backend's migration 6. A claimed item records its worker (``worker_id``), when
its lease ends (``lease_expires_at``, on the database's clock) and how many claims it had (``attempts``); an expired
lease sends the item back to ``pending`` or fails it (``PostgresSessionQueueStore.reclaim_expired``). ``model_key``
is the item's main model, which a worker's claim prefers when it holds that model already. ``queue_state`` keeps
whether a queue is paused, for every node on the database and across restarts.

Items that were ``in_progress`` before this migration had no lease: they get one that has already ended, so the
first reclaim takes them back (one attempt counted), instead of leaving them running for ever.
"""

from __future__ import annotations

from invoke_postgres_storage.migrator import Migration

__all__ = ["MIGRATION"]

MIGRATION = Migration(
    version=4,
    description="session queue: leases, attempts, main model key, queue state",
    statements=(
        "ALTER TABLE queue_items ADD COLUMN worker_id text, ADD COLUMN lease_expires_at timestamptz, "
        "ADD COLUMN attempts integer NOT NULL DEFAULT 0, ADD COLUMN model_key text",
        "UPDATE queue_items SET attempts = 1, lease_expires_at = clock_timestamp() WHERE status = 'in_progress'",
        "UPDATE queue_items SET attempts = 1 WHERE status IN ('completed', 'failed') AND started_at IS NOT NULL",
        # Reclaiming: the running items whose lease ended, without reading the others.
        "CREATE INDEX idx_queue_items_lease ON queue_items (lease_expires_at) WHERE status = 'in_progress'",
        """CREATE TABLE queue_state (
            queue_id text PRIMARY KEY,
            paused boolean NOT NULL DEFAULT false
        )""",
    ),
)
