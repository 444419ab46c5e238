"""Image listings: cursor (keyset) pages and the trigger-kept counts behind ``total``, on every backend."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from invoke_sdk.images import ImageCategory, ImageRecordChanges, InvalidImageCursorError, OrderDir
from invoke_sqlite_storage import SqliteBackend
from invoke_sqlite_storage.migrations import MIGRATIONS

from tests.images.test_api import API, make_client, png_bytes, upload
from tests.images.test_record_store import new
from tests.storage_backends import AnyBackend, BackendMaker, backend, backend_maker

__all__ = ["backend", "backend_maker"]  # the listing's tests run on every backend

ORDERS: list[tuple[bool, OrderDir]] = list(itertools.product((True, False), ("DESC", "ASC")))
# Every combination of the filters that the counts table answers, and one search (counted on the records).
FILTERS: list[dict[str, Any]] = [
    {},
    {"is_intermediate": False},
    {"is_intermediate": True, "categories": ["general", "user"]},
    {"categories": ["mask"]},
    {"categories": []},
    {"exclude_categories": ["general"]},
    {"exclude_categories": ["general", "mask"], "image_origin": "external"},
    {"image_origin": "internal", "is_intermediate": False},
    {"search_term": "fox"},
]
CATEGORIES = ["general", "mask", "control", "user", "other"]


def _same_stamp(maker: BackendMaker, names: list[str]) -> None:
    """Give these records one created_at, so the order must break the tie the same way on every page."""
    maker.execute((
        "UPDATE images SET created_at = '2026-01-01T00:00:00.000Z' "
        f"WHERE image_name IN ({', '.join('?' * len(names))})",
        names,
    ))


async def _seed(backend: AnyBackend, n: int = 23) -> None:
    for i in range(n):
        await backend.images.save(new(
            f"img{i:02d}.png", image_category=CATEGORIES[i % 5], is_intermediate=i % 2 == 1, starred=i % 4 == 0,
            image_origin="external" if i % 3 == 0 else "internal",
            metadata='{"prompt": "a red fox"}' if i % 6 == 0 else None,
        ))


def _direct_count(maker: BackendMaker, filters: dict[str, Any]) -> int:
    """COUNT(*) over the records themselves, the way the listing counted before the counts table."""
    where, params = ["deleted_at IS NULL"], []
    if (origin := filters.get("image_origin")) is not None:
        where.append("image_origin = ?")
        params.append(origin)
    if (cats := filters.get("categories")) is not None:
        where.append(f"image_category IN ({', '.join('?' * len(cats))})" if cats else "1 = 0")
        params += cats
    if cats := filters.get("exclude_categories"):
        where.append(f"image_category NOT IN ({', '.join('?' * len(cats))})")
        params += cats
    if (inter := filters.get("is_intermediate")) is not None:
        where.append("is_intermediate = ?")
        params.append(bool(inter))
    if term := filters.get("search_term"):
        where.append("(LOWER(image_name) LIKE ? OR LOWER(metadata) LIKE ?)")
        params += [f"%{term.lower()}%"] * 2
    return int(maker.scalar(f"SELECT COUNT(*) FROM images WHERE {' AND '.join(where)}", params))


async def _totals_match(backend: AnyBackend, maker: BackendMaker) -> None:
    for filters in FILTERS:
        page = await backend.images.get_many(limit=1, **filters)
        assert page.total == _direct_count(maker, filters), filters


@pytest.mark.parametrize(("starred_first", "order_dir"), ORDERS)
async def test_cursor_pages_are_the_offset_pages(backend: AnyBackend, backend_maker: BackendMaker,
                                                 starred_first: bool, order_dir: OrderDir) -> None:
    await _seed(backend)
    _same_stamp(backend_maker, [f"img{i:02d}.png" for i in range(5, 15)])
    order: dict[str, Any] = {"starred_first": starred_first, "order_dir": order_dir}
    everything = [r.image_name for r in (await backend.images.get_many(limit=100, **order)).items]
    assert len(everything) == 23
    by_offset = [[r.image_name for r in (await backend.images.get_many(offset=o, limit=4, **order)).items]
                 for o in range(0, 23, 4)]
    by_cursor: list[list[str]] = []
    cursor = None
    while True:
        page = await backend.images.get_many(limit=4, cursor=cursor, **order)
        by_cursor.append([r.image_name for r in page.items])
        assert page.total == 23 and page.limit == 4
        assert page.offset == (0 if cursor is None else None)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert by_cursor == by_offset
    assert [n for p in by_cursor for n in p] == everything
    # A page that ends exactly at the last record says so: it has no next page.
    assert (await backend.images.get_many(limit=23, **order)).next_cursor is None
    assert (await backend.images.get_many(limit=22, **order)).next_cursor is not None


async def test_filtered_cursor_pages_keep_their_place_while_images_are_added(backend: AnyBackend) -> None:
    await _seed(backend)
    filters: dict[str, Any] = {"is_intermediate": False, "categories": ["general", "mask", "user"],
                               "starred_first": False}
    expected = [r.image_name for r in (await backend.images.get_many(limit=100, **filters)).items]
    first = await backend.images.get_many(limit=3, **filters)
    # Newer images arrive between two pages: an offset page would shift by them, a cursor page does not.
    for i in range(3):
        await backend.images.save(new(f"late{i}.png", image_category="general"))
    seen = [r.image_name for r in first.items]
    cursor = first.next_cursor
    while cursor is not None:
        page = await backend.images.get_many(limit=3, cursor=cursor, **filters)
        seen += [r.image_name for r in page.items]
        cursor = page.next_cursor
    assert seen == expected
    assert page.total == len(expected) + 3  # the count sees them, though


async def test_bad_cursors_are_refused_with_what_to_do(backend: AnyBackend) -> None:
    await _seed(backend, 6)
    cursor = (await backend.images.get_many(limit=2)).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidImageCursorError, match="another order"):
        await backend.images.get_many(limit=2, cursor=cursor, order_dir="ASC")
    with pytest.raises(InvalidImageCursorError, match="another order"):
        await backend.images.get_many(limit=2, cursor=cursor, starred_first=False)
    for bad in ("", "nope", "!!!", cursor[:-3], "WzEsMiwzXQ", "WyJzRCIsMCwiMjAyNiIsOTk5OTk5OTk5OTk5OTk5OTk5OTk5XQ"):
        with pytest.raises(InvalidImageCursorError, match="not one this server gave out"):
            await backend.images.get_many(limit=2, cursor=bad)
    with pytest.raises(ValueError, match="either cursor or offset"):
        await backend.images.get_many(limit=2, offset=2, cursor=cursor)


async def test_totals_come_from_the_counts_and_stay_exact_through_every_change(
    backend: AnyBackend, backend_maker: BackendMaker
) -> None:
    await _totals_match(backend, backend_maker)  # empty
    await _seed(backend)
    await _totals_match(backend, backend_maker)
    await backend.images.update("img00.png", ImageRecordChanges(image_category=ImageCategory.mask))
    await backend.images.update("img01.png", ImageRecordChanges(is_intermediate=False, starred=True))
    await backend.images.update("img02.png", ImageRecordChanges(starred=True))  # not a counted column
    await _totals_match(backend, backend_maker)
    await backend.images.delete("img03.png")
    await backend.images.delete_many(["img04.png", "img05.png", "missing.png"])
    await backend.images.delete_intermediates()
    await _totals_match(backend, backend_maker)
    backend_maker.execute(
        # A soft delete (no code path sets it yet, but the listing's filter honours it) and an undo of one.
        "UPDATE images SET deleted_at = '2026-01-02T00:00:00.000Z' WHERE image_name = 'img06.png'",
        "UPDATE images SET deleted_at = '2026-01-02T00:00:00.000Z' WHERE image_name = 'img08.png'",
        "UPDATE images SET deleted_at = NULL WHERE image_name = 'img08.png'",
        # Another process writing the same database is counted too: the triggers run in its transaction.
        "INSERT INTO images (image_name, image_origin, image_category, width, height, is_intermediate) "
        "VALUES ('other.png', 'external', 'user', 8, 8, false)",
    )
    live = backend_maker.scalar("SELECT COUNT(*) FROM images WHERE deleted_at IS NULL")
    counted = backend_maker.scalar("SELECT SUM(n) FROM image_counts")
    assert counted == live
    await _totals_match(backend, backend_maker)


async def test_the_migration_counts_the_records_already_stored(tmp_path: Path) -> None:
    path = tmp_path / "invoke.db"
    before = [m for m in MIGRATIONS if m.version < 4]
    old = SqliteBackend(path, migrations=before)
    await old.start()
    await _seed(old)
    await old.stop()
    backend = SqliteBackend(path)
    await backend.start()
    try:
        await _totals_match(backend, BackendMaker("sqlite", path=path))
        assert (await backend.images.get_many()).total == 23
    finally:
        await backend.stop()


def test_the_api_pages_by_cursor_and_refuses_a_bad_one(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        for category in ("general", "mask", "user", "user", "general"):
            assert upload(client, png_bytes(), image_category=category).status_code == 201
        everything = [i["image_name"] for i in client.get(f"{API}/", params={"limit": 10}).json()["items"]]
        seen: list[str] = []
        params: dict[str, Any] = {"limit": 2}
        while True:
            page = client.get(f"{API}/", params=params).json()
            assert page["total"] == 5 and page["offset"] == (None if "cursor" in params else 0)
            seen += [i["image_name"] for i in page["items"]]
            if page["next_cursor"] is None:
                break
            params = {"limit": 2, "cursor": page["next_cursor"]}
        assert seen == everything
        cursor = client.get(f"{API}/", params={"limit": 2}).json()["next_cursor"]
        # 400 for what the document rules out (a cursor past its maxLength); 422 for a well-formed request whose
        # cursor cannot be used here.
        for bad, status, message in (
            ({"cursor": cursor, "offset": 0}, 422, "either cursor or offset"),
            ({"cursor": "garbage"}, 422, "not one this server gave out"),
            ({"cursor": cursor, "order_dir": "ASC"}, 422, "another order"),
            ({"cursor": "x" * 401}, 400, "cursor"),
        ):
            r = client.get(f"{API}/", params=bad)
            assert r.status_code == status and message in r.json()["detail"], (bad, r.text)
