"""Migration 3: model records (whole configs as ``jsonb``, plus the columns searches filter on).

``name`` and ``key`` sort in byte order (``COLLATE "C"``), as SQLite sorts them, whatever the database's locale.
"""

from __future__ import annotations

from invoke_postgres_storage.migrator import Migration

__all__ = ["MIGRATION"]

MIGRATION = Migration(
    version=3,
    description="model records: installed model configs",
    statements=(
        """CREATE TABLE model_records (
            key text COLLATE "C" PRIMARY KEY,
            hash text NOT NULL,
            name text COLLATE "C" NOT NULL,
            base text NOT NULL,
            type text NOT NULL,
            format text NOT NULL,
            path text NOT NULL UNIQUE,
            config jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )""",
        "CREATE INDEX idx_model_records_name ON model_records (name, key)",
        "CREATE INDEX idx_model_records_base_type ON model_records (base, type)",
        "CREATE INDEX idx_model_records_hash ON model_records (hash)",
    ),
)
