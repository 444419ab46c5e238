"""Migration 5: the workflow library (saved graphs with their workflow JSON, name, description and tags).

The same tables as the SQLite backend's migration 7, except that ``tags`` is a ``text[]`` with a GIN index: the tag
filter of a page is ``tags && $1`` (any of them), which the index answers without a table of its own.
"""

from __future__ import annotations

from invoke_postgres_storage.migrator import Migration

__all__ = ["MIGRATION"]

MIGRATION = Migration(
    version=5,
    description="workflow library: workflows and their tags",
    statements=(
        """CREATE TABLE workflows (
            workflow_id text PRIMARY KEY,
            name text NOT NULL,
            description text NOT NULL DEFAULT '',
            tags text[] NOT NULL DEFAULT '{}',
            graph text NOT NULL,
            workflow text,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )""",
        # Pages in each order a client may ask for (ties by id).
        "CREATE INDEX idx_workflows_name ON workflows (lower(name), workflow_id)",
        "CREATE INDEX idx_workflows_created ON workflows (created_at, workflow_id)",
        "CREATE INDEX idx_workflows_updated ON workflows (updated_at, workflow_id)",
        "CREATE INDEX idx_workflows_tags ON workflows USING gin (tags)",
    ),
)
