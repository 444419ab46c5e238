"""Migration 4: image counts kept by triggers, so a listing's ``total`` is a sum over a few rows.

Counting the matches of a listing walked a whole index (10 ms and more at 100,000 records, on every
page). Every filter of a listing except the search term is on ``image_origin``, ``image_category`` and
``is_intermediate``, and there are only a few dozen combinations of the three: ``image_counts`` holds the
number of live records (``deleted_at IS NULL``) of each, and the triggers below keep it exact in the same
transaction as the change, whichever connection or process makes it. A PostgreSQL backend keeps the same
table with the same triggers.
"""

from __future__ import annotations

from invoke_sqlite_storage.migrator import Migration

__all__ = ["MIGRATION"]

_KEY = "image_origin, image_category, is_intermediate"


def _add(row: str) -> str:
    # INSERT ... SELECT needs its WHERE before an upsert clause (SQLite's parser), and the WHERE is wanted anyway.
    return (
        f"INSERT INTO image_counts ({_KEY}, n) SELECT {row}.image_origin, {row}.image_category, {row}.is_intermediate,"
        f" 1 WHERE {row}.deleted_at IS NULL ON CONFLICT ({_KEY}) DO UPDATE SET n = n + 1;"
    )


def _remove(row: str) -> str:
    return (
        f"UPDATE image_counts SET n = n - 1 WHERE {row}.deleted_at IS NULL AND image_origin = {row}.image_origin "
        f"AND image_category = {row}.image_category AND is_intermediate = {row}.is_intermediate;"
    )


MIGRATION = Migration(
    version=4,
    description="images: record counts by origin, category and intermediate flag",
    statements=(
        f"""CREATE TABLE image_counts (
            image_origin TEXT NOT NULL,
            image_category TEXT NOT NULL,
            is_intermediate INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY ({_KEY})
        ) WITHOUT ROWID""",
        f"INSERT INTO image_counts ({_KEY}, n) SELECT {_KEY}, COUNT(*) FROM images WHERE deleted_at IS NULL "
        f"GROUP BY {_KEY}",
        f"CREATE TRIGGER image_counts_insert AFTER INSERT ON images FOR EACH ROW BEGIN {_add('NEW')} END",
        f"CREATE TRIGGER image_counts_delete AFTER DELETE ON images FOR EACH ROW BEGIN {_remove('OLD')} END",
        f"""CREATE TRIGGER image_counts_update AFTER UPDATE OF {_KEY}, deleted_at ON images FOR EACH ROW
            BEGIN {_remove('OLD')} {_add('NEW')} END""",
    ),
)
