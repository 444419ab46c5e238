"""Migration 1: batches, queue items, and session progress as rows (results and node errors).

``session`` and ``output`` are ``text``, not ``jsonb``: they are stored and handed back exactly as given and never
queried inside, and ``jsonb`` would reorder keys and cost a parse per row. ``field_values`` is ``jsonb`` (small,
read back as values). An iteration path is an ``integer[]``: PostgreSQL compares arrays element by element, so
``ORDER BY path`` is iteration order with no text encoding.
"""

from __future__ import annotations

from invoke_postgres_storage.migrator import Migration

__all__ = ["MIGRATION"]

MIGRATION = Migration(
    version=1,
    description="session queue: batches, queue items, results and node errors",
    statements=(
        """CREATE TABLE batches (
            batch_id text PRIMARY KEY,
            queue_id text NOT NULL,
            runs integer NOT NULL,
            requested integer NOT NULL,
            origin text,
            destination text,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )""",
        "CREATE INDEX idx_batches_queue ON batches (queue_id)",
        """CREATE TABLE queue_items (
            item_id bigint PRIMARY KEY,
            queue_id text NOT NULL,
            batch_id text NOT NULL REFERENCES batches (batch_id) ON DELETE CASCADE,
            session_id text NOT NULL UNIQUE,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'canceled')),
            priority bigint NOT NULL DEFAULT 0,
            field_values jsonb,
            session text NOT NULL,
            error_type text,
            error_message text,
            error_traceback text,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            started_at timestamptz,
            completed_at timestamptz
        )""",
        # The highest item id ever given out: enqueues number their items from it in their transaction, so ids
        # are contiguous, in batch order, never reused after a clear, and a refused enqueue leaves no gap (a
        # sequence would: it is not rolled back).
        "CREATE TABLE queue_item_ids (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), "
        "last bigint NOT NULL)",
        "INSERT INTO queue_item_ids (last) VALUES (0)",
        # Claiming: only pending items are in these, so a claim never walks past finished ones.
        "CREATE INDEX idx_queue_items_pending ON queue_items (priority DESC, item_id) WHERE status = 'pending'",
        "CREATE INDEX idx_queue_items_queue_pending ON queue_items (queue_id, priority DESC, item_id) "
        "WHERE status = 'pending'",
        # Listing a queue in execution order (optionally one status), counting by status, a batch's status.
        "CREATE INDEX idx_queue_items_queue_order ON queue_items (queue_id, priority DESC, item_id)",
        "CREATE INDEX idx_queue_items_queue_status ON queue_items (queue_id, status, priority DESC, item_id)",
        "CREATE INDEX idx_queue_items_batch ON queue_items (batch_id, status)",
        """CREATE TABLE session_results (
            item_id bigint NOT NULL REFERENCES queue_items (item_id) ON DELETE CASCADE,
            seq integer NOT NULL,
            node_id text NOT NULL,
            source_node_id text NOT NULL,
            path integer[] NOT NULL,
            output text NOT NULL,
            PRIMARY KEY (item_id, seq)
        )""",
        # One source node's results in iteration order, page by page; and one row per node instance, however
        # often it is written (a retried append, a retried item).
        "CREATE UNIQUE INDEX idx_session_results_source ON session_results (item_id, source_node_id, path)",
        """CREATE TABLE session_errors (
            item_id bigint NOT NULL REFERENCES queue_items (item_id) ON DELETE CASCADE,
            node_id text NOT NULL,
            source_node_id text NOT NULL,
            error_type text NOT NULL,
            message text NOT NULL,
            traceback text NOT NULL,
            field text,
            stored bigint GENERATED ALWAYS AS IDENTITY,
            PRIMARY KEY (item_id, node_id)
        )""",
    ),
)
