"""The image-record store on PostgreSQL (table, indexes and kept counts from migration 2).

Listings page by keyset: a cursor holds the last row's place in the listing's order (starred, created_at, id),
so a deep page costs what the first does. ``total`` is summed from ``image_counts`` unless a search term is given.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Unpack

from invoke_sdk.image_json_pages import ImageRecordJsonPage, NameField
from invoke_sdk.images import (
    ImageCategory,
    ImageListFilters,
    ImageNotFoundError,
    ImageOrigin,
    ImageRecord,
    ImageRecordChanges,
    ImageRecordPage,
    InvalidImageCursorError,
    NewImageRecord,
    OrderDir,
)
from invoke_sdk.listing_anchors import ListingAnchors
from invoke_sdk.storage import StorageError
from psycopg.rows import dict_row

from invoke_postgres_storage.database import Connection, Database
from invoke_postgres_storage.record_json import record_json_columns

__all__ = ["PostgresImageRecordStore"]

COLUMNS = (
    "image_name, image_origin, image_category, width, height, session_id, node_id, is_intermediate, starred, "
    "has_workflow, created_at, updated_at, deleted_at"
)
_BIGINT = range(-(2**63), 2**63)


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _order_tag(starred_first: bool, order_dir: OrderDir) -> str:
    return f"{'s' if starred_first else 'n'}{order_dir[0]}"


def _encode_cursor(row: dict[str, Any], *, starred_first: bool, order_dir: OrderDir) -> str:
    key = [_order_tag(starred_first, order_dir), int(row["starred"]), row["created_at"].isoformat(), int(row["_id"])]
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def _preview(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "..."


def _decode_cursor(cursor: str, *, starred_first: bool, order_dir: OrderDir) -> tuple[bool, datetime, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, starred, created_at, row_id = json.loads(text)
        if not (isinstance(tag, str) and type(starred) is int and isinstance(created_at, str)
                and type(row_id) is int and row_id in _BIGINT):
            raise ValueError("not a cursor")
        when = datetime.fromisoformat(created_at)
        if when.tzinfo is None:
            raise ValueError("not a cursor")
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error):
        raise InvalidImageCursorError(
            f"cursor {_preview(cursor)!r} is not one this server gave out: pass the next_cursor of the previous "
            "page as it came, or leave it out to start at the first page"
        ) from None
    if tag != _order_tag(starred_first, order_dir):
        raise InvalidImageCursorError(
            "the cursor belongs to a listing in another order (starred_first / order_dir differ): keep the order "
            "of the listing it came from, or leave it out to start at the first page"
        )
    return bool(starred), when, row_id


_VERSION_SQL = "SELECT n FROM image_changes WHERE id = 1"
# The page's helper columns, not fields of a record.
_HELPERS = frozenset({"_id", "_version"})

_Place = tuple[bool, datetime, int]
"""Where a row is in a listing's order: ``(starred, created_at, id)``, what a cursor holds."""


def _after_sql(starred_first: bool, order_dir: OrderDir) -> str:
    """The condition for the rows after a place (keyset paging: found through the index, not counted off)."""
    if not starred_first:
        return f"(created_at, id) {'<' if order_dir == 'DESC' else '>'} (%s, %s)"
    if order_dir == "DESC":
        return "(starred, created_at, id) < (%s, %s, %s)"
    return "(starred < %s OR (starred = %s AND (created_at, id) > (%s, %s)))"


def _after_params(place: _Place, starred_first: bool, order_dir: OrderDir) -> list[Any]:
    starred, created_at, row_id = place
    if not starred_first:
        return [created_at, row_id]
    if order_dir == "DESC":
        return [starred, created_at, row_id]
    return [starred, starred, created_at, row_id]


class PostgresImageRecordStore:
    """Implements :class:`invoke_sdk.images.ImageRecordStore` and
    :class:`~invoke_sdk.images.ImageVersionedRecordStore` on the ``images`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # Where every 1,024th row of the listings paged by deep offsets lies (invoke_sdk.listing_anchors); public so
        # that a test can space the places closer.
        self.anchors: ListingAnchors[_Place] = ListingAnchors()

    async def records_version(self) -> int | None:
        """``image_changes.n`` (migration 6): one primary-key read, a round trip on a pooled connection.

        Autocommit, so the read sees every change committed before it, by any node.
        """

        async def work(conn: Connection) -> int | None:
            cur = await conn.execute("SELECT n FROM image_changes WHERE id = 1")
            row = await cur.fetchone()
            return int(row[0]) if row is not None else None

        return await self._db.run(work)

    async def _rows(self, sql: str, params: Sequence[Any], *, write: bool = False) -> list[dict[str, Any]]:
        async def work(conn: Connection) -> list[dict[str, Any]]:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql, params)
            return await cur.fetchall()

        return await (self._db.write(work) if write else self._db.run(work))

    async def save(self, record: NewImageRecord) -> ImageRecord:
        # ON CONFLICT DO NOTHING: a taken name is told apart from a real failure without an aborted transaction.
        rows = await self._rows(
            "INSERT INTO images (image_name, image_origin, image_category, width, height, session_id, node_id, "
            "metadata, is_intermediate, starred, has_workflow) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            f"ON CONFLICT (image_name) DO NOTHING RETURNING {COLUMNS}",
            (
                record.image_name,
                ImageOrigin(record.image_origin).value,
                ImageCategory(record.image_category).value,
                record.width,
                record.height,
                record.session_id,
                record.node_id,
                record.metadata,
                record.is_intermediate,
                record.starred,
                record.has_workflow,
            ),
            write=True,
        )
        if not rows:
            raise StorageError(f"an image named {record.image_name!r} is already stored")
        return ImageRecord(**rows[0])

    async def get(self, image_name: str) -> ImageRecord | None:
        rows = await self._rows(
            f"SELECT {COLUMNS} FROM images WHERE image_name = %s AND deleted_at IS NULL", (image_name,)
        )
        return ImageRecord(**rows[0]) if rows else None

    async def get_many(
        self,
        *,
        offset: int = 0,
        limit: int = 10,
        image_origin: ImageOrigin | None = None,
        categories: Sequence[ImageCategory] | None = None,
        exclude_categories: Sequence[ImageCategory] | None = None,
        is_intermediate: bool | None = None,
        starred_first: bool = True,
        order_dir: OrderDir = "DESC",
        search_term: str | None = None,
        cursor: str | None = None,
    ) -> ImageRecordPage:
        rows, total, next_cursor = await self._page(
            COLUMNS, offset=offset, limit=limit, image_origin=image_origin, categories=categories,
            exclude_categories=exclude_categories, is_intermediate=is_intermediate, starred_first=starred_first,
            order_dir=order_dir, search_term=search_term, cursor=cursor,
        )
        return ImageRecordPage(
            items=[ImageRecord(**{k: v for k, v in r.items() if k not in _HELPERS}) for r in rows],
            offset=offset if cursor is None else None,
            limit=limit,
            total=total,
            next_cursor=next_cursor,
        )

    async def get_many_json(
        self, *, name_fields: Sequence[NameField] = (), **filters: Unpack[ImageListFilters]
    ) -> ImageRecordJsonPage | None:
        """The page of :meth:`get_many` with each record encoded by PostgreSQL
        (``invoke_postgres_storage.record_json``); None when a row holds a value that encoding does not take."""
        rows, total, next_cursor = await self._page(record_json_columns(name_fields), **filters)
        return ImageRecordJsonPage.of_records(
            [r["_json"] for r in rows],
            offset=filters.get("offset", 0) if filters.get("cursor") is None else None,
            limit=filters.get("limit", 10),
            total=total,
            next_cursor=next_cursor,
        )

    async def _page(
        self,
        columns: str,
        *,
        offset: int = 0,
        limit: int = 10,
        image_origin: ImageOrigin | None = None,
        categories: Sequence[ImageCategory] | None = None,
        exclude_categories: Sequence[ImageCategory] | None = None,
        is_intermediate: bool | None = None,
        starred_first: bool = True,
        order_dir: OrderDir = "DESC",
        search_term: str | None = None,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], int, str | None]:
        """The page's rows (``columns`` of each, plus the cursor's ``starred``, ``created_at`` and ``_id``), the
        listing's total and the next cursor."""
        if offset < 0:
            raise ValueError("offset must not be negative")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if order_dir not in ("ASC", "DESC"):
            raise ValueError(f"order_dir must be 'ASC' or 'DESC', not {order_dir!r}")
        if cursor is not None and offset:
            raise ValueError("give either cursor or offset, not both")
        # Filters on the columns image_counts is keyed by; the count adds up its rows instead of counting records.
        keyed: list[str] = []
        params: list[Any] = []
        if image_origin is not None:
            keyed.append("image_origin = %s")
            params.append(ImageOrigin(image_origin).value)
        if categories is not None:
            keyed.append("image_category = ANY(%s::text[])")
            params.append([ImageCategory(c).value for c in categories])
        if exclude_categories:
            keyed.append("image_category <> ALL(%s::text[])")
            params.append([ImageCategory(c).value for c in exclude_categories])
        if is_intermediate is not None:
            keyed.append("is_intermediate = %s")
            params.append(is_intermediate)
        where = ["deleted_at IS NULL", *keyed]
        if search_term:
            # ILIKE: case-insensitive, as SQLite's LIKE is for the letters of ASCII.
            where.append("(image_name ILIKE %s OR metadata ILIKE %s)")
            params += [_like(search_term)] * 2
        order = f"created_at {order_dir}, id {order_dir}"
        if starred_first:
            order = f"starred DESC, {order}"
        if search_term:
            count_sql = f"SELECT COUNT(*) FROM images WHERE {' AND '.join(where)}"
        else:
            count_sql = f"SELECT COALESCE(SUM(n), 0) FROM image_counts WHERE {' AND '.join(keyed) or 'true'}"
        start = _decode_cursor(cursor, starred_first=starred_first, order_dir=order_dir) if cursor is not None else None

        def rows_sql(place: _Place | None, columns: str) -> tuple[str, list[Any]]:
            """The listing's rows after ``place`` (or from its start) in its order, then LIMIT and OFFSET."""
            page_where, page_params = list(where), list(params)
            if place is not None:
                page_where.append(_after_sql(starred_first, order_dir))
                page_params += _after_params(place, starred_first, order_dir)
            sql = f"SELECT {columns} FROM images WHERE {' AND '.join(page_where)} ORDER BY {order} LIMIT %s OFFSET %s"
            return sql, page_params

        # The records version rides along: one statement reads one snapshot, so a page started from a remembered
        # place can tell whether the place still holds (invoke_sdk.listing_anchors).
        page_columns = f"({_VERSION_SQL}) AS _version, id AS _id, {columns}"
        listing = (" AND ".join(where), order, *(tuple(p) if isinstance(p, list) else p for p in params))

        async def page_from(conn: Connection, place: _Place | None, skip: int) -> list[dict[str, Any]]:
            sql, page_params = rows_sql(place, page_columns)
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql, [*page_params, min(limit + 1, 2**63 - 1), min(skip, 2**63 - 1)])
            return await cur.fetchall()

        async def from_anchor(conn: Connection) -> list[dict[str, Any]] | None:
            """An ``offset`` page read from the remembered place of the row before its block (found and kept
            first if need be); None when the records kept changing between the statements."""
            anchors = self.anchors
            block = anchors.block_of(offset)
            for _attempt in range(2):
                known, place, version = anchors.nearest(listing, block)
                if known < block:
                    sql, place_params = rows_sql(place, f"({_VERSION_SQL}) AS _version, starred, created_at, id")
                    cur = conn.cursor(row_factory=dict_row)
                    await cur.execute(sql, [*place_params, 1, (block - known) * anchors.spacing - 1])
                    found = await cur.fetchone()
                    if found is None:
                        return []  # the listing ends before the block, so before the offset: an empty page
                    if version is not None and int(found["_version"]) != version:
                        anchors.forget(listing)  # the known place is from before a change: start from the start
                        continue
                    place = (bool(found["starred"]), found["created_at"], int(found["id"]))
                    version = int(found["_version"])
                    anchors.keep(listing, block, place, version)
                rows = await page_from(conn, place, offset - block * anchors.spacing)
                if rows and int(rows[0]["_version"]) != version:
                    anchors.forget(listing)
                    continue
                return rows
            return None

        async def work(conn: Connection) -> tuple[list[dict[str, Any]], int]:
            rows: list[dict[str, Any]] | None = None
            if start is None and not search_term and self.anchors.block_of(offset) > 0:
                rows = await from_anchor(conn)
            if rows is None:
                rows = await page_from(conn, start, offset)
            counted = await conn.execute(count_sql, params)
            total = await counted.fetchone()
            return rows, int(total[0]) if total else 0

        rows, total = await self._db.run(work)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, total, _encode_cursor(rows[-1], starred_first=starred_first, order_dir=order_dir) if more else None

    async def update(self, image_name: str, changes: ImageRecordChanges) -> ImageRecord:
        sets: list[str] = []
        params: list[Any] = []
        if changes.image_category is not None:
            sets.append("image_category = %s")
            params.append(ImageCategory(changes.image_category).value)
        if changes.is_intermediate is not None:
            sets.append("is_intermediate = %s")
            params.append(changes.is_intermediate)
        if changes.starred is not None:
            sets.append("starred = %s")
            params.append(changes.starred)
        if sets:
            rows = await self._rows(
                f"UPDATE images SET {', '.join(sets)} WHERE image_name = %s AND deleted_at IS NULL "
                f"RETURNING {COLUMNS}",
                (*params, image_name),
                write=True,
            )
        else:
            rows = await self._rows(
                f"SELECT {COLUMNS} FROM images WHERE image_name = %s AND deleted_at IS NULL", (image_name,)
            )
        if not rows:
            raise ImageNotFoundError(image_name)
        return ImageRecord(**rows[0])

    async def delete(self, image_name: str) -> bool:
        return bool(await self.delete_many([image_name]))

    async def delete_many(self, image_names: Sequence[str]) -> list[str]:
        rows = await self._rows(
            "DELETE FROM images WHERE image_name = ANY(%s::text[]) RETURNING image_name", (list(image_names),),
            write=True,
        )
        deleted = {str(r["image_name"]) for r in rows}
        return [name for name in dict.fromkeys(image_names) if name in deleted]

    async def delete_intermediates(self) -> list[str]:
        rows = await self._rows("DELETE FROM images WHERE is_intermediate RETURNING image_name", (), write=True)
        return sorted(str(r["image_name"]) for r in rows)
