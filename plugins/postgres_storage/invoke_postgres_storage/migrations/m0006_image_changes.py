"""Migration 6: a counter of image-record changes, kept by a trigger, that tells the host's page cache when to let go.

The same role as the SQLite backend's migration 8: the host serves a cached listing page or record only while
``image_changes.n`` reads the same as when it cached it. The trigger raises ``n`` in the transaction of the change,
so the new number becomes visible with the change itself, on every API node at once; a sequence would not do
(``nextval`` is seen before the change commits, and a page read in between would be cached under the new number).
One bump per statement: a delete of many records moves the row once, and every writer holds its lock only for the
rest of its own short transaction.
"""

from __future__ import annotations

from invoke_postgres_storage.migrator import Migration

__all__ = ["MIGRATION"]

MIGRATION = Migration(
    version=6,
    description="images: a change counter kept by a trigger, for the host's page cache",
    statements=(
        "CREATE TABLE image_changes (id integer PRIMARY KEY CHECK (id = 1), n bigint NOT NULL)",
        "INSERT INTO image_changes (id, n) VALUES (1, 0)",
        """CREATE FUNCTION image_changes_bump() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE image_changes SET n = n + 1 WHERE id = 1;
            RETURN NULL;
        END $$""",
        "CREATE TRIGGER image_changes_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON images "
        "FOR EACH STATEMENT EXECUTE FUNCTION image_changes_bump()",
    ),
)
