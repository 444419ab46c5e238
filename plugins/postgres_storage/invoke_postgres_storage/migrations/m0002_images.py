"""Migration 2: image records, their list indexes, the ``updated_at`` trigger and the kept counts.

``id`` (identity) breaks ``created_at`` ties in the listing order, as the rowid does in SQLite. ``image_counts``
holds the number of live records per (origin, category, intermediate) and is kept exact by a trigger in the same
transaction as the change, so a listing's ``total`` sums a few rows instead of counting records.
"""

from __future__ import annotations

from invoke_postgres_storage.migrator import Migration

__all__ = ["MIGRATION"]

_KEY = "image_origin, image_category, is_intermediate"

MIGRATION = Migration(
    version=2,
    description="images: image records, list indexes, counts by origin, category and intermediate flag",
    statements=(
        """CREATE TABLE images (
            id bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
            image_name text PRIMARY KEY,
            image_origin text NOT NULL,
            image_category text NOT NULL,
            width integer NOT NULL,
            height integer NOT NULL,
            session_id text,
            node_id text,
            metadata text,
            is_intermediate boolean NOT NULL DEFAULT false,
            starred boolean NOT NULL DEFAULT false,
            has_workflow boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            deleted_at timestamptz
        )""",
        # Each ends in the listing's order (B-trees are read either way, so one serves ASC and DESC).
        *(f"CREATE INDEX idx_images_list_{name} ON images ({columns}, id) WHERE deleted_at IS NULL"
          for name, columns in (
              ("created", "created_at"),
              ("starred", "starred, created_at"),
              ("starred_desc", "starred DESC, created_at"),
              ("intermediate", "is_intermediate, created_at"),
              ("intermediate_starred", "is_intermediate, starred, created_at"),
              ("intermediate_starred_desc", "is_intermediate, starred DESC, created_at"),
          )),
        "CREATE INDEX idx_images_session ON images (session_id)",
        """CREATE FUNCTION images_touch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- A change that does not set updated_at itself gets the time of the change.
            IF NEW.updated_at = OLD.updated_at THEN
                NEW.updated_at := clock_timestamp();
            END IF;
            RETURN NEW;
        END $$""",
        "CREATE TRIGGER images_updated_at BEFORE UPDATE ON images FOR EACH ROW EXECUTE FUNCTION images_touch()",
        f"""CREATE TABLE image_counts (
            image_origin text NOT NULL,
            image_category text NOT NULL,
            is_intermediate boolean NOT NULL,
            n bigint NOT NULL,
            PRIMARY KEY ({_KEY})
        )""",
        f"""CREATE FUNCTION image_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.deleted_at IS NULL THEN
                UPDATE image_counts SET n = n - 1 WHERE image_origin = OLD.image_origin
                    AND image_category = OLD.image_category AND is_intermediate = OLD.is_intermediate;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.deleted_at IS NULL THEN
                INSERT INTO image_counts ({_KEY}, n)
                    VALUES (NEW.image_origin, NEW.image_category, NEW.is_intermediate, 1)
                    ON CONFLICT ({_KEY}) DO UPDATE SET n = image_counts.n + 1;
            END IF;
            RETURN NULL;
        END $$""",
        f"CREATE TRIGGER image_counts_change AFTER INSERT OR DELETE OR UPDATE OF {_KEY}, deleted_at ON images "
        "FOR EACH ROW EXECUTE FUNCTION image_counts_change()",
    ),
)
