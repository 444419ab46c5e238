"""Migration 8: a counter of image-record changes, kept by triggers, that tells the host's page cache when to let go.

The host caches the encoded responses of listing pages and records (``invoke_host.images.page_cache``) and serves
one only while nothing changed since. "Nothing changed" must hold across processes: an ``invoke-host run`` writing
the same file beside a server commits through a connection of its own. ``image_changes`` holds one row whose ``n``
the triggers below raise in the same transaction as every insert, update and delete of a record, whichever
connection makes it, so one read of that row (``SqliteImageRecordStore.records_version``) answers the question.

``PRAGMA data_version`` was the other candidate: it changes on a reading connection when any other connection
commits, but on *any* commit (queue progress, leases, workflows ...), so a running queue would empty the cache
several times a second; the counter moves for image records only.
"""

from __future__ import annotations

from invoke_sqlite_storage.migrator import Migration

__all__ = ["MIGRATION"]

_BUMP = "UPDATE image_changes SET n = n + 1 WHERE id = 1;"

MIGRATION = Migration(
    version=8,
    description="images: a change counter kept by triggers, for the host's page cache",
    statements=(
        "CREATE TABLE image_changes (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)",
        "INSERT INTO image_changes (id, n) VALUES (1, 0)",
        # SQLite has row triggers only: a delete of many records raises n once per record, a few µs each.
        *(f"CREATE TRIGGER image_changes_{op.lower()} AFTER {op} ON images FOR EACH ROW BEGIN {_BUMP} END"
          for op in ("INSERT", "UPDATE", "DELETE")),
    ),
)
