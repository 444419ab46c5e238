"""Listing pages encoded by the record store (``get_many_json``) against the host's own encoding of the typed page,
byte for byte, on every backend: every order, filter, offset (from kept places too) and cursor, odd values included.

The reference is what the route sent before the fast path: the typed page (``get_many``), made into DTOs and encoded
by the app's own serializer. Where a store cannot encode a page exactly it must say so (None), and the route's
answer is then the typed one; the tests check both that the fast path is taken where it can be and that its bytes
are the reference's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from invoke_sdk.image_json_pages import ImageJsonListingStore, NameField
from invoke_sdk.listing_anchors import ListingAnchors
from litestar import Litestar
from litestar.serialization import encode_json, get_serializer

from invoke_host.api.images import _URL_FIELDS, API_V1, ImageDTO, ImageDTOPage, _page_json
from tests.images.test_api import make_client, png_bytes, upload
from tests.images.test_listing_pages import FILTERS, ORDERS, _seed
from tests.images.test_record_store import new
from tests.storage_backends import AnyBackend, BackendMaker, backend, backend_maker

__all__ = ["backend", "backend_maker"]  # run on every backend

_SERIALIZER = get_serializer(Litestar([]).type_encoders)
# Everything JSON must escape, and what it must not: quotes, backslashes, control characters, non-ASCII, emoji.
ODD = 'ünï "q" \\ \n\t\x01\x1f\x7f é€😀 \u2028 </script> \'%s'


async def _reference(store: Any, **query: Any) -> bytes:
    page = await store.get_many(**query)
    model = ImageDTOPage(items=ImageDTO.many(page.items), offset=page.offset, limit=page.limit, total=page.total,
                         next_cursor=page.next_cursor)
    return encode_json(model, _SERIALIZER)


async def _fast(store: Any, **query: Any) -> bytes | None:
    page = await store.get_many_json(name_fields=_URL_FIELDS, **query)
    return None if page is None else _page_json(page)


async def _assert_same(store: Any, *, must_be_fast: bool = True, **query: Any) -> bytes | None:
    fast = await _fast(store, **query)
    if must_be_fast:
        assert fast is not None, query
    if fast is not None:
        assert fast == await _reference(store, **query), query
    return fast


async def _odd_records(backend: AnyBackend) -> None:
    await backend.images.save(new(f"{ODD}.png", session_id=ODD, node_id=None, width=2_147_483_647, height=1,
                                  image_origin="external", image_category="user", starred=True))
    await backend.images.save(new("plain.png", session_id=None, node_id='n"1', has_workflow=True,
                                  is_intermediate=True, metadata='{"prompt": "a red fox"}'))


def test_the_stores_offer_the_encoded_listing(backend: AnyBackend) -> None:
    assert isinstance(backend.images, ImageJsonListingStore)


@pytest.mark.parametrize(("starred_first", "order_dir"), ORDERS)
async def test_every_page_is_the_typed_page_byte_for_byte(
    backend: AnyBackend, starred_first: bool, order_dir: Any
) -> None:
    await _seed(backend)  # 23 records, every filter column mixed
    await _odd_records(backend)
    store: Any = backend.images
    store.anchors = ListingAnchors[Any](spacing=4)  # deep offsets from kept places, as on a big listing
    for filters in FILTERS:
        query = {**filters, "starred_first": starred_first, "order_dir": order_dir}
        for offset in (0, 1, 3, 4, 5, 9, 17, 24, 25, 40):
            for limit in (1, 4, 50):
                await _assert_same(store, offset=offset, limit=limit, **query)
        # Walk the cursor pages to the end, every page compared.
        cursor = None
        pages = 0
        while True:
            body = await _assert_same(store, limit=3, cursor=cursor, **query)
            page = ImageDTOPage.model_validate_json(body or b"")
            pages += 1
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert pages >= 1


async def test_name_fields_are_added_in_order_and_escaped(backend: AnyBackend) -> None:
    await _odd_records(backend)
    fields = [NameField("a", "/x/'%s\"/", "/é"), NameField("b", "", "")]
    page = await backend.images.get_many_json(name_fields=fields, limit=1, starred_first=True)
    assert page is not None
    item = json.loads(page.items_json)[0]
    assert list(item)[-2:] == ["a", "b"]
    assert item["a"] == f"/x/'%s\"/{ODD}.png/é" and item["b"] == f"{ODD}.png"


def _timestamps(maker: BackendMaker, stamps: dict[str, str]) -> None:
    maker.execute(*(("UPDATE images SET created_at = ?, updated_at = ? WHERE image_name = ?", (s, s, n))
                    for n, s in stamps.items()))


async def test_timestamps_read_as_pydantic_writes_them(backend: AnyBackend, backend_maker: BackendMaker) -> None:
    names = [f"t{i}.png" for i in range(6)]
    for name in names:
        await backend.images.save(new(name))
    if backend_maker.kind == "sqlite":
        # The store's own form (milliseconds), zero and not.
        stamps = ["2026-01-01T00:00:00.000Z", "2026-03-04T05:06:07.120Z", "2026-03-04T05:06:07.001Z",
                  "1999-12-31T23:59:59.999Z", "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"]
    else:
        stamps = ["2026-01-01T00:00:00Z", "2026-03-04T05:06:07.12Z", "2026-03-04T05:06:07.123456Z",
                  "2026-06-01T12:00:00.5+05:30", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"]
    _timestamps(backend_maker, dict(zip(names, stamps, strict=True)))
    for order in ORDERS:
        await _assert_same(backend.images, limit=10, starred_first=order[0], order_dir=order[1])
        await _assert_same(backend.images, limit=2, offset=2, starred_first=order[0], order_dir=order[1])


async def test_a_page_with_a_timestamp_in_another_form_is_left_to_the_typed_listing(tmp_path: Path) -> None:
    # SQLite keeps timestamps as text: one written another way (by hand, by another tool) is read by pydantic
    # as it is, which the query cannot copy; the store says so and the route lists that page the typed way.
    maker = BackendMaker("sqlite", path=tmp_path / "db.sqlite")
    async with maker.started() as sqlite:
        for i in range(4):
            await sqlite.images.save(new(f"t{i}.png"))
        _timestamps(maker, {"t0.png": "2026-01-01 00:00:00", "t1.png": "2026-01-01T00:00:00.123456+01:00"})
        assert await _fast(sqlite.images, limit=10) is None
        # A page without them is still encoded by the store.
        plain = [r.image_name for r in (await sqlite.images.get_many(limit=10)).items if r.image_name in
                 ("t2.png", "t3.png")]
        assert len(plain) == 2
        maker.execute("UPDATE images SET starred = 1 WHERE image_name IN ('t2.png', 't3.png')")
        await _assert_same(sqlite.images, limit=2)
        # A flag that is not 0 or 1 is left to the typed listing too (which refuses it as it always did).
        maker.execute("UPDATE images SET has_workflow = 2 WHERE image_name = 't2.png'")
        assert await _fast(sqlite.images, limit=2) is None


def test_the_route_answers_the_same_bytes_and_headers_either_way(tmp_path: Path) -> None:
    with make_client(tmp_path, max_image_page_cache_bytes=0) as client:
        for category in ("general", "user", "mask", "general", "control"):
            assert upload(client, png_bytes(), image_category=category).status_code == 201
        queries = ["limit=2", "limit=2&offset=2", "limit=50&starred_first=false&order_dir=ASC",
                   "limit=3&is_intermediate=false&categories=general&categories=user", "limit=3&search_term=png"]
        fast = {q: client.get(f"{API_V1}/images/?{q}") for q in queries}
        for r in fast.values():
            assert r.status_code == 200, r.text
            assert r.json()["items"]
        cursor = fast["limit=2"].json()["next_cursor"]
        queries.append(f"limit=2&cursor={cursor}")
        fast[queries[-1]] = client.get(f"{API_V1}/images/?{queries[-1]}")
        # The same server with the store's encoding out of the way: the typed route, as it was.
        images = client.app.state.host.images
        encoder = images._json_listing
        assert encoder is not None
        images._json_listing = None
        try:
            typed = {q: client.get(f"{API_V1}/images/?{q}") for q in queries}
        finally:
            images._json_listing = encoder
        for q in queries:
            assert fast[q].content == typed[q].content, q
            assert fast[q].headers == typed[q].headers, q
