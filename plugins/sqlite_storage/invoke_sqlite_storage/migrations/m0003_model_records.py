"""Migration 3: model records (whole configs as JSON, plus the columns searches filter on)."""

from __future__ import annotations

from invoke_sqlite_storage.migrator import Migration

__all__ = ["MIGRATION"]

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

MIGRATION = Migration(
    version=3,
    description="model records: installed model configs",
    statements=(
        f"""CREATE TABLE model_records (
            key TEXT PRIMARY KEY NOT NULL,
            hash TEXT NOT NULL,
            name TEXT NOT NULL,
            base TEXT NOT NULL,
            type TEXT NOT NULL,
            format TEXT NOT NULL,
            path TEXT NOT NULL UNIQUE,
            config TEXT NOT NULL,
            created_at TEXT NOT NULL DEFAULT ({NOW}),
            updated_at TEXT NOT NULL DEFAULT ({NOW})
        )""",
        "CREATE INDEX idx_model_records_name ON model_records (name, key)",
        "CREATE INDEX idx_model_records_base_type ON model_records (base, type)",
        "CREATE INDEX idx_model_records_hash ON model_records (hash)",
    ),
)
