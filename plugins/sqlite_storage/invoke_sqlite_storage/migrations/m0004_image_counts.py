"""Migration 4: image counts kept by triggers, so a listing's ``total`` is a sum over a few rows; list indexes
that end in the listing's order.

Counting the matches of a listing walked a whole index (10 ms and more at 100,000 records, on every
page). Every filter of a listing except the search term is on ``image_origin``, ``image_category`` and
``is_intermediate``, and there are only a few dozen combinations of the three: ``image_counts`` holds the
number of live records (``deleted_at IS NULL``) of each, and the triggers below keep it exact in the same
transaction as the change, whichever connection or process makes it. A PostgreSQL backend keeps the same
table with the same triggers.

Migration 2's list indexes carried the filter columns after ``created_at`` so that the count could be
answered from the index; with the count gone they only broke the order's ``rowid`` tie-break (SQLite sorted
each page's candidates again). The new ones end in ``created_at``, with the rowid right after it, so a page is
read in order and stops at its limit; the ``starred DESC`` ones serve oldest-first listings with starred first.
Measured at 100,000 records: first pages 0.3-1.7 ms -> 0.15-0.3 ms, a middle page by offset 55 ms -> 4 ms
(all) and 188 ms -> 4 ms (oldest first); filtered deep pages read their rows from the table and stay about
as they were (use a cursor).
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
    description="images: record counts by origin, category and intermediate flag; list indexes in list order",
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
        *(f"DROP INDEX {name}" for name in (
            "idx_images_created", "idx_images_intermediate_created", "idx_images_starred_created",
            "idx_images_intermediate_starred_created",
        )),
        *(f"CREATE INDEX idx_images_list_{name} ON images ({columns}) WHERE deleted_at IS NULL" for name, columns in (
            ("created", "created_at"),
            ("starred", "starred, created_at"),
            ("starred_desc", "starred DESC, created_at"),
            ("intermediate", "is_intermediate, created_at"),
            ("intermediate_starred", "is_intermediate, starred, created_at"),
            ("intermediate_starred_desc", "is_intermediate, starred DESC, created_at"),
        )),
    ),
)
