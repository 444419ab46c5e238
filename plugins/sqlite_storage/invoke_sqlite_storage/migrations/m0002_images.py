"""Migration 2: image records, their list indexes and the ``updated_at`` trigger."""

from __future__ import annotations

from invoke_sqlite_storage.migrator import Migration

__all__ = ["MIGRATION"]

NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

# Every listing filters on deleted_at IS NULL and usually on is_intermediate, then walks created_at.
# Each index carries the other filter columns, so a filtered page (and the COUNT of all matches) is
# answered from the index alone; only the rows of the page itself are read from the table.
_LIST_COLUMNS = "image_category, image_origin"

MIGRATION = Migration(
    version=2,
    description="images: image records",
    statements=(
        f"""CREATE TABLE images (
            image_name TEXT PRIMARY KEY,
            image_origin TEXT NOT NULL,
            image_category TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            session_id TEXT,
            node_id TEXT,
            metadata TEXT,
            is_intermediate INTEGER NOT NULL DEFAULT 0,
            starred INTEGER NOT NULL DEFAULT 0,
            has_workflow INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL DEFAULT ({NOW}),
            updated_at TEXT NOT NULL DEFAULT ({NOW}),
            deleted_at TEXT
        )""",
        f"CREATE INDEX idx_images_created ON images (created_at, is_intermediate, starred, {_LIST_COLUMNS}) "
        "WHERE deleted_at IS NULL",
        f"CREATE INDEX idx_images_intermediate_created ON images (is_intermediate, created_at, starred, "
        f"{_LIST_COLUMNS}) WHERE deleted_at IS NULL",
        f"CREATE INDEX idx_images_starred_created ON images (starred, created_at, is_intermediate, {_LIST_COLUMNS}) "
        "WHERE deleted_at IS NULL",
        f"CREATE INDEX idx_images_intermediate_starred_created ON images (is_intermediate, starred, created_at, "
        f"{_LIST_COLUMNS}) WHERE deleted_at IS NULL",
        "CREATE INDEX idx_images_session ON images (session_id)",
        # A change that does not set updated_at itself gets the time of the change.
        f"""CREATE TRIGGER images_updated_at AFTER UPDATE ON images FOR EACH ROW
            WHEN NEW.updated_at = OLD.updated_at
            BEGIN
                UPDATE images SET updated_at = {NOW} WHERE rowid = NEW.rowid;
            END""",
    ),
)
