"""The image-record store on SQLite (table and indexes from migration 2)."""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Unpack

import aiosqlite
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
from pydantic import TypeAdapter

from invoke_sqlite_storage.database import Database
from invoke_sqlite_storage.record_json import record_json_columns
from invoke_sqlite_storage.records_version import RecordsVersion

__all__ = ["ImageListQuery", "SqliteImageRecordStore", "build_list_query", "decode_cursor", "encode_cursor"]

COLUMNS = (
    "image_name, image_origin, image_category, width, height, session_id, node_id, is_intermediate, starred, "
    "has_workflow, created_at, updated_at, deleted_at"
)


def _record(row: sqlite3.Row) -> ImageRecord:
    return ImageRecord(**dict(row))


# One validation call for a whole page; the listing's helper columns (_total, _rowid) are ignored.
_RECORDS: TypeAdapter[list[ImageRecord]] = TypeAdapter(list[ImageRecord])


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class ImageListQuery:
    """The SQL of one listing: the page (one row more than asked for, to tell whether another page follows)
    and the count of all matches."""

    page_sql: str
    page_params: tuple[Any, ...]
    count_sql: str
    count_params: tuple[Any, ...]
    # The place (starred, created_at, rowid) and records version of the row at the offset alone.
    place_sql: str = ""
    place_params: tuple[Any, ...] = ()
    # What the listing is apart from where a page starts: its filters and order (keys ListingAnchors).
    listing: tuple[Any, ...] = ()


_SQLITE_INT = range(-(2**63), 2**63)
_VERSION_SQL = "SELECT n FROM image_changes WHERE id = 1"


def _order_tag(starred_first: bool, order_dir: OrderDir) -> str:
    return f"{'s' if starred_first else 'n'}{order_dir[0]}"


def encode_cursor(row: sqlite3.Row, *, starred_first: bool, order_dir: OrderDir) -> str:
    """The cursor of the page after ``row``: its place in the listing's order, and which order that is."""
    key = [_order_tag(starred_first, order_dir), int(row["starred"]), row["created_at"], int(row["_rowid"])]
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, starred_first: bool, order_dir: OrderDir) -> tuple[int, str, int]:
    """``(starred, created_at, rowid)`` of the last row before the page; ``ValueError`` for one we did not give out."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, starred, created_at, rowid = json.loads(text)
        if not (isinstance(tag, str) and type(starred) is int and isinstance(created_at, str)
                and type(rowid) is int and rowid in _SQLITE_INT):
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
    return starred, created_at, rowid


def _preview(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "..."


def build_list_query(
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
    after: tuple[int, str, int] | None = None,
    columns: str = COLUMNS,
) -> ImageListQuery:
    """The SQL a listing runs (public so the benchmark can time the same query without the store).

    ``after`` is a decoded cursor's place, ``(starred, created_at, rowid)``: the page starts ``offset`` rows past
    it (how the store answers a deep offset from a known place, ``invoke_sdk.listing_anchors``). ``columns`` are
    what the page reads of each row besides the helper columns (the records' JSON for ``get_many_json``).
    """
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
        keyed.append("image_origin = ?")
        params.append(ImageOrigin(image_origin).value)
    if categories is not None:
        values = [ImageCategory(c).value for c in categories]
        keyed.append(f"image_category IN ({', '.join('?' * len(values))})" if values else "0")
        params += values
    if exclude_categories:
        values = [ImageCategory(c).value for c in exclude_categories]
        keyed.append(f"image_category NOT IN ({', '.join('?' * len(values))})")
        params += values
    if is_intermediate is not None:
        keyed.append("is_intermediate = ?")
        params.append(int(is_intermediate))
    where = ["deleted_at IS NULL", *keyed]
    if search_term:
        where.append("(image_name LIKE ? ESCAPE '\\' OR metadata LIKE ? ESCAPE '\\')")
        params += [_like(search_term)] * 2
    # rowid follows insertion, so it breaks created_at ties (same millisecond) the same way on every page.
    order = f"created_at {order_dir}, rowid {order_dir}"
    if starred_first:
        order = f"starred DESC, {order}"
    page_where = list(where)
    page_params = list(params)
    if cursor is not None:
        after = decode_cursor(cursor, starred_first=starred_first, order_dir=order_dir)
    if after is not None:
        # Keyset paging: the rows after the cursor's in the listing's order, found through the index
        # instead of counted off from the start as OFFSET does.
        starred, created_at, rowid = after
        after = "<" if order_dir == "DESC" else ">"
        if not starred_first:
            page_where.append(f"(created_at, rowid) {after} (?, ?)")
            page_params += [created_at, rowid]
        elif order_dir == "DESC":
            page_where.append("(starred, created_at, rowid) < (?, ?, ?)")
            page_params += [starred, created_at, rowid]
        else:
            page_where.append("(starred < ? OR (starred = ? AND (created_at, rowid) > (?, ?)))")
            page_params += [starred, starred, created_at, rowid]
    condition = " AND ".join(where)
    # The inner query pages over the covering index alone; only the page's rows are read from the table.
    if search_term:
        count_sql = f"SELECT COUNT(*) FROM images WHERE {condition}"
    else:
        count_sql = f"SELECT COALESCE(SUM(n), 0) FROM image_counts WHERE {' AND '.join(keyed) or '1'}"
    # The count rides along as a column (SQLite runs the uncorrelated subquery once), so a page is one
    # statement and one trip to the reader's thread; only an empty page needs the count on its own.
    # The records version rides along too: one statement reads one snapshot, so a page started from a remembered
    # place can tell whether the place still holds (the version it was read under is the page's own).
    page_sql = (
        f"SELECT ({count_sql}) AS _total, ({_VERSION_SQL}) AS _version, rowid AS _rowid, {columns} FROM images "
        f"WHERE rowid IN (SELECT rowid FROM images WHERE {' AND '.join(page_where)} ORDER BY {order} LIMIT ? "
        f"OFFSET ?) ORDER BY {order}"
    )
    place_sql = (
        f"SELECT ({_VERSION_SQL}) AS _version, starred, created_at, rowid AS _rowid FROM images "
        f"WHERE {' AND '.join(page_where)} ORDER BY {order} LIMIT 1 OFFSET ?"
    )
    return ImageListQuery(
        page_sql=page_sql,
        page_params=(*params, *page_params, limit + 1, offset),
        count_sql=count_sql,
        count_params=tuple(params),
        place_sql=place_sql,
        place_params=(*page_params, offset),
        listing=(condition, order, *params),
    )


class SqliteImageRecordStore:
    """Implements :class:`invoke_sdk.images.ImageRecordStore` and
    :class:`~invoke_sdk.images.ImageVersionedRecordStore` on the ``images`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._version = RecordsVersion(db.path)
        # Where every 1,024th row of the listings paged by deep offsets lies (invoke_sdk.listing_anchors); public so
        # that a test can space the places closer.
        self.anchors: ListingAnchors[tuple[int, str, int]] = ListingAnchors()

    async def records_version(self) -> int | None:
        """``image_changes.n`` (migration 8), read on the event loop (``invoke_sqlite_storage.records_version``).

        Unlike every other read here this one does not hop to a reader's thread: the hop costs 50-100 µs under
        load, more than a cached page's whole answer, while this takes a memory compare when nothing changed and
        one tiny read when something did.
        """
        return self._version.read()

    def close(self) -> None:
        """Let go of what :meth:`records_version` holds (the backend's stop); it reopens on the next read."""
        self._version.close()

    async def save(self, record: NewImageRecord) -> ImageRecord:
        async def work(conn: aiosqlite.Connection) -> ImageRecord:
            async with conn.execute(
                "INSERT INTO images (image_name, image_origin, image_category, width, height, session_id, node_id, "
                "metadata, is_intermediate, starred, has_workflow) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"RETURNING {COLUMNS}",
                (
                    record.image_name,
                    ImageOrigin(record.image_origin).value,
                    ImageCategory(record.image_category).value,
                    record.width,
                    record.height,
                    record.session_id,
                    record.node_id,
                    record.metadata,
                    int(record.is_intermediate),
                    int(record.starred),
                    int(record.has_workflow),
                ),
            ) as cur:
                row = await cur.fetchone()
            assert row is not None
            return _record(row)

        try:
            return await self._db.write(work)
        except sqlite3.IntegrityError as exc:
            raise StorageError(f"an image named {record.image_name!r} is already stored") from exc

    async def get(self, image_name: str) -> ImageRecord | None:
        async with self._db.read() as conn, conn.execute(
            f"SELECT {COLUMNS} FROM images WHERE image_name = ? AND deleted_at IS NULL", (image_name,)
        ) as cur:
            row = await cur.fetchone()
        return _record(row) if row is not None else None

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
        filters: dict[str, Any] = {
            "image_origin": image_origin, "categories": categories, "exclude_categories": exclude_categories,
            "is_intermediate": is_intermediate, "starred_first": starred_first, "order_dir": order_dir,
            "search_term": search_term,
        }
        rows, total, next_cursor = await self._page(COLUMNS, offset=offset, limit=limit, cursor=cursor, **filters)
        return ImageRecordPage(
            items=_RECORDS.validate_python([dict(r) for r in rows]),
            offset=offset if cursor is None else None,
            limit=limit,
            total=total,
            next_cursor=next_cursor,
        )

    async def get_many_json(
        self, *, name_fields: Sequence[NameField] = (), **filters: Unpack[ImageListFilters]
    ) -> ImageRecordJsonPage | None:
        """The page of :meth:`get_many` with each record encoded by SQLite (``invoke_sqlite_storage.record_json``);
        None when a row holds a value that encoding does not take as it is (the host then calls get_many)."""
        rows, total, next_cursor = await self._page(record_json_columns(name_fields), **filters)
        return ImageRecordJsonPage.of_records(
            [r["_json"] for r in rows],
            offset=filters.get("offset", 0) if filters.get("cursor") is None else None,
            limit=filters.get("limit", 10),
            total=total,
            next_cursor=next_cursor,
        )

    async def _page(
        self, columns: str, *, offset: int = 0, limit: int = 10, cursor: str | None = None, **filters: Any
    ) -> tuple[list[sqlite3.Row], int, str | None]:
        """The page's rows (``columns`` of each, plus the cursor's), the listing's total and the next cursor;
        ``filters`` are the rest of :meth:`get_many`'s keywords, any left out at their defaults."""
        query = build_list_query(offset=offset, limit=limit, cursor=cursor, columns=columns, **filters)
        async with self._db.read() as conn:
            rows: list[sqlite3.Row] | None = None
            if cursor is None and not filters.get("search_term") and self.anchors.block_of(offset) > 0:
                rows = await self._from_place(conn, query.listing, offset, limit, filters, columns)
            if rows is None:
                rows = list(await conn.execute_fetchall(query.page_sql, query.page_params))
            if rows:
                total = int(rows[0]["_total"])
            else:
                counted = list(await conn.execute_fetchall(query.count_sql, query.count_params))
                total = int(counted[0][0]) if counted else 0
        more = len(rows) > limit
        rows = rows[:limit]
        order = {"starred_first": filters.get("starred_first", True), "order_dir": filters.get("order_dir", "DESC")}
        return rows, total, encode_cursor(rows[-1], **order) if more else None

    async def _from_place(
        self, conn: aiosqlite.Connection, listing: tuple[Any, ...], offset: int, limit: int, filters: dict[str, Any],
        columns: str,
    ) -> list[sqlite3.Row] | None:
        """The rows of an ``offset`` page read from the remembered place of the row before its block, finding and
        remembering that place first if need be; None when the page must be read the plain way (the records kept
        changing between the statements, or the page is past the end of the listing, where the count says so)."""
        anchors = self.anchors
        block = anchors.block_of(offset)
        for _attempt in range(2):
            known, place, version = anchors.nearest(listing, block)
            if known < block:
                # One walk over the index from the nearest known place, as OFFSET would from the start.
                found = build_list_query(offset=(block - known) * anchors.spacing - 1, after=place, **filters)
                rows = list(await conn.execute_fetchall(found.place_sql, found.place_params))
                if not rows:
                    return []  # the listing ends before the block, so before the offset: an empty page
                row = rows[0]
                if version is not None and int(row["_version"]) != version:
                    anchors.forget(listing)  # the known place is from before a change: start over from the start
                    continue
                place, version = (int(row["starred"]), str(row["created_at"]), int(row["_rowid"])), int(row["_version"])
                anchors.keep(listing, block, place, version)
            page = build_list_query(
                offset=offset - block * anchors.spacing, limit=limit, after=place, columns=columns, **filters
            )
            rows = list(await conn.execute_fetchall(page.page_sql, page.page_params))
            if not rows:
                return None
            if int(rows[0]["_version"]) != version:
                anchors.forget(listing)
                continue
            return rows
        return None

    async def update(self, image_name: str, changes: ImageRecordChanges) -> ImageRecord:
        sets: list[str] = []
        params: list[Any] = []
        if changes.image_category is not None:
            sets.append("image_category = ?")
            params.append(ImageCategory(changes.image_category).value)
        if changes.is_intermediate is not None:
            sets.append("is_intermediate = ?")
            params.append(int(changes.is_intermediate))
        if changes.starred is not None:
            sets.append("starred = ?")
            params.append(int(changes.starred))

        async def work(conn: aiosqlite.Connection) -> sqlite3.Row | None:
            if sets:
                await conn.execute(
                    f"UPDATE images SET {', '.join(sets)} WHERE image_name = ? AND deleted_at IS NULL",
                    (*params, image_name),
                )
            async with conn.execute(
                f"SELECT {COLUMNS} FROM images WHERE image_name = ? AND deleted_at IS NULL", (image_name,)
            ) as cur:
                return await cur.fetchone()

        row = await self._db.write(work)
        if row is None:
            raise ImageNotFoundError(image_name)
        return _record(row)

    async def delete(self, image_name: str) -> bool:
        return bool(await self.delete_many([image_name]))

    async def delete_many(self, image_names: Sequence[str]) -> list[str]:
        async def work(conn: aiosqlite.Connection) -> list[str]:
            async with conn.execute(
                "DELETE FROM images WHERE image_name IN (SELECT value FROM json_each(?)) RETURNING image_name",
                (json.dumps(list(image_names)),),
            ) as cur:
                rows = await cur.fetchall()
            return [str(r[0]) for r in rows]

        deleted = set(await self._db.write(work))
        return [name for name in dict.fromkeys(image_names) if name in deleted]

    async def delete_intermediates(self) -> list[str]:
        async def work(conn: aiosqlite.Connection) -> list[str]:
            async with conn.execute("DELETE FROM images WHERE is_intermediate = 1 RETURNING image_name") as cur:
                rows = await cur.fetchall()
            return sorted(str(r[0]) for r in rows)

        return await self._db.write(work)
