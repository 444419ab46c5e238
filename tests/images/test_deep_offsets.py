"""Offset pages started from remembered keyset places (``invoke_sdk.listing_anchors``), on every backend.

Every page is compared with the same page read the plain way (``LIMIT ... OFFSET ...`` from the listing's start:
the store with places spaced wider than the listing), before and after each kind of change, made by this store
and by another node on the same database, whose changes only the records version can tell this one about.
"""

from __future__ import annotations

from typing import Any

import pytest
from invoke_sdk.images import ImageRecordChanges, ImageRecordPage
from invoke_sdk.listing_anchors import ListingAnchors

from tests.images.test_listing_pages import FILTERS, ORDERS, _seed
from tests.images.test_record_store import new
from tests.storage_backends import AnyBackend, BackendMaker, backend, backend_maker

__all__ = ["backend", "backend_maker"]  # run on every backend

PLAIN = ListingAnchors[Any](spacing=10**9)  # never a block: every page read from the start
OFFSETS = [0, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15, 16, 17, 19, 20, 22, 23, 24, 40]


def _shape(page: ImageRecordPage) -> tuple[list[str], int | None, int, int, str | None]:
    return [r.image_name for r in page.items], page.offset, page.limit, page.total, page.next_cursor


async def _both(backend: AnyBackend, anchors: ListingAnchors[Any], **query: Any) -> tuple[Any, Any]:
    """The page read from places, then the plain way."""
    store: Any = backend.images
    store.anchors = anchors
    placed = _shape(await store.get_many(**query))
    store.anchors = PLAIN
    plain = _shape(await store.get_many(**query))
    store.anchors = anchors
    return placed, plain


async def _assert_pages_match(backend: AnyBackend, anchors: ListingAnchors[Any], filters: dict[str, Any],
                              limit: int = 3) -> None:
    for offset in OFFSETS:
        placed, plain = await _both(backend, anchors, offset=offset, limit=limit, **filters)
        assert placed == plain, (filters, offset)


@pytest.mark.parametrize(("starred_first", "order_dir"), ORDERS)
async def test_offset_pages_from_places_are_the_plain_pages(
    backend: AnyBackend, starred_first: bool, order_dir: Any
) -> None:
    await _seed(backend)  # 23 records, every filter column mixed
    anchors = ListingAnchors[Any](spacing=4, max_listings=3, max_blocks=4)
    for filters in FILTERS:
        query = {**filters, "starred_first": starred_first, "order_dir": order_dir}
        await _assert_pages_match(backend, anchors, query)
        await _assert_pages_match(backend, anchors, query, limit=1)  # again, now from the places kept
        assert len(anchors) <= 3  # the bound: least recently used listings go


async def test_places_are_kept_and_used(backend: AnyBackend) -> None:
    await _seed(backend)
    anchors = ListingAnchors[Any](spacing=4, max_blocks=8)
    store: Any = backend.images
    store.anchors = anchors
    await store.get_many(offset=13, limit=2)
    (listing,) = anchors._listings  # one listing, its block 3 (the row before offset 12) found and kept
    assert anchors.nearest(listing, 8)[0] == 3 and anchors.nearest(listing, 2)[0] == 0
    await store.get_many(offset=40, limit=2)  # past the end: block 8 (row 31) is not there, nor kept
    assert anchors.nearest(listing, 8)[0] == 3
    assert _shape(await store.get_many(offset=40, limit=2)) == ([], 40, 2, 23, None)


# Each changes what a listing holds or where a record is in it (img01: mask, intermediate; img22: control, not).
CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("img01.png", {"starred": True}),
    ("img01.png", {"starred": False}),
    ("img01.png", {"image_category": "user"}),
    ("img01.png", {"is_intermediate": False}),
    ("img01.png", {"is_intermediate": True}),
    ("img22.png", {"starred": True}),
    ("img22.png", {"image_category": "general"}),
    ("img22.png", {"is_intermediate": True}),
]
LISTINGS: list[dict[str, Any]] = [
    {}, {"is_intermediate": False}, {"categories": ["general", "user"]}, {"starred_first": False, "order_dir": "ASC"},
]


async def _all_pages(backend: AnyBackend) -> list[Any]:
    store: Any = backend.images
    kept, store.anchors = store.anchors, PLAIN
    try:
        return [_shape(await store.get_many(offset=o, limit=3, **f)) for f in LISTINGS for o in OFFSETS]
    finally:
        store.anchors = kept


@pytest.mark.parametrize("other_node", [False, True], ids=["this node", "another node"])
async def test_every_change_moves_the_places(backend: AnyBackend, backend_maker: BackendMaker,
                                             other_node: bool) -> None:
    await _seed(backend)
    anchors = ListingAnchors[Any](spacing=4, max_blocks=8)
    async with backend_maker.started() as other:
        writer: Any = other.images if other_node else backend.images
        steps: list[tuple[str, Any]] = [
            *((f"{name} {change}", (writer.update, name, ImageRecordChanges(**change))) for name, change in CHANGES),
            ("delete img21", (writer.delete, "img21.png")),
            ("delete img00", (writer.delete, "img00.png")),
            ("insert", (writer.save, new("late.png", starred=True))),
        ]
        for filters in LISTINGS:
            await _assert_pages_match(backend, anchors, filters)
        for label, (call, *args) in steps:
            before = await _all_pages(backend)
            await call(*args)
            for filters in LISTINGS:
                await _assert_pages_match(backend, anchors, filters)
            assert await _all_pages(backend) != before, f"{label} changed no page: a stale place would go unseen"
