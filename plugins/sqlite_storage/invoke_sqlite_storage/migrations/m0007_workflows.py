"""Migration 7: the workflow library (saved graphs with their workflow JSON, name, description and tags).

``graph`` and ``workflow`` are text stored exactly as given; ``tags`` is the JSON list handed back, and
``workflow_tags`` holds one row per tag, which the tag filter of a page joins on.
"""

from __future__ import annotations

from invoke_sqlite_storage.migrator import Migration

__all__ = ["MIGRATION"]

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

MIGRATION = Migration(
    version=7,
    description="workflow library: workflows and their tags",
    statements=(
        f"""CREATE TABLE workflows (
            workflow_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '[]',
            graph TEXT NOT NULL,
            workflow TEXT,
            created_at TEXT NOT NULL DEFAULT ({NOW}),
            updated_at TEXT NOT NULL DEFAULT ({NOW})
        )""",
        # Pages in each order a client may ask for (ties by id).
        "CREATE INDEX idx_workflows_name ON workflows (lower(name), workflow_id)",
        "CREATE INDEX idx_workflows_created ON workflows (created_at, workflow_id)",
        "CREATE INDEX idx_workflows_updated ON workflows (updated_at, workflow_id)",
        """CREATE TABLE workflow_tags (
            tag TEXT NOT NULL,
            workflow_id TEXT NOT NULL REFERENCES workflows (workflow_id) ON DELETE CASCADE,
            PRIMARY KEY (tag, workflow_id)
        )""",
        "CREATE INDEX idx_workflow_tags_workflow ON workflow_tags (workflow_id)",
    ),
)
