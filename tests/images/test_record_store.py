from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from invoke_sdk.images import ImageCategory, ImageNotFoundError, ImageOrigin, ImageRecordChanges, NewImageRecord
from invoke_sdk.storage import StorageBackend, StorageError

from tests.storage_backends import AnyBackend, backend, backend_maker, sqlite_backend_at
from tests.waiting import async_wait_until

__all__ = ["backend", "backend_maker", "new"]  # the record store's tests run on every backend


def new(name: str, **kw: object) -> NewImageRecord:
    fields: dict[str, object] = {
        "image_name": name, "image_origin": "internal", "image_category": "general", "width": 8, "height": 8
    }
    fields.update(kw)
    return NewImageRecord.model_validate(fields)


async def test_backend_offers_the_images_store(backend: AnyBackend) -> None:
    assert isinstance(backend, StorageBackend)
    record = await backend.images.save(new("a.png", session_id="s1", node_id="n1"))
    assert record.image_category is ImageCategory.general and record.image_origin is ImageOrigin.internal
    assert (await backend.images.get("a.png")) == record
    assert await backend.images.get("missing.png") is None


async def test_category_and_origin_are_checked_in_code_and_stored_as_strings(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        new("bad.png", image_category="wallpaper")
    async with sqlite_backend_at(tmp_path) as sqlite_backend:
        await sqlite_backend.images.save(new("a.png", image_category="mask"))
    conn = sqlite3.connect(sqlite_backend.path)
    assert conn.execute("SELECT image_category, typeof(image_category) FROM images").fetchone() == ("mask", "text")
    conn.close()


async def test_a_taken_name_is_refused(backend: AnyBackend) -> None:
    await backend.images.save(new("a.png"))
    with pytest.raises(StorageError, match="already stored"):
        await backend.images.save(new("a.png"))


async def test_filters_and_paging(backend: AnyBackend) -> None:
    cats = ["general", "mask", "control", "user", "other"]
    for i in range(25):
        await backend.images.save(
            new(f"img{i:02d}.png", image_category=cats[i % 5], is_intermediate=i % 2 == 1,
                image_origin="external" if i % 3 == 0 else "internal",
                metadata='{"prompt": "a red fox"}' if i == 7 else None)
        )
    store = backend.images
    page = await store.get_many(limit=10, starred_first=False)
    assert page.total == 25 and [r.image_name for r in page.items] == [f"img{i:02d}.png" for i in range(24, 14, -1)]
    last = await store.get_many(offset=20, limit=10, starred_first=False)
    assert [r.image_name for r in last.items] == [f"img{i:02d}.png" for i in range(4, -1, -1)]
    asc = await store.get_many(limit=3, order_dir="ASC", starred_first=False)
    assert [r.image_name for r in asc.items] == ["img00.png", "img01.png", "img02.png"]
    # Every record appears exactly once over all pages.
    seen = []
    for offset in range(0, 25, 4):
        seen += [r.image_name for r in (await store.get_many(offset=offset, limit=4)).items]
    assert sorted(seen) == sorted(f"img{i:02d}.png" for i in range(25))

    masks = await store.get_many(categories=[ImageCategory.mask], limit=100)
    assert masks.total == 5 and {r.image_category for r in masks.items} == {ImageCategory.mask}
    not_masks = await store.get_many(exclude_categories=[ImageCategory.mask, ImageCategory.user], limit=100)
    assert not_masks.total == 15
    assert (await store.get_many(categories=[], limit=100)).total == 0
    finals = await store.get_many(is_intermediate=False, limit=100)
    assert finals.total == 13 and not any(r.is_intermediate for r in finals.items)
    external = await store.get_many(image_origin=ImageOrigin.external, limit=100)
    assert external.total == 9 and {r.image_origin for r in external.items} == {ImageOrigin.external}
    assert [r.image_name for r in (await store.get_many(search_term="RED FOX")).items] == ["img07.png"]
    assert (await store.get_many(search_term="img1")).total == 10
    assert (await store.get_many(search_term="%")).total == 0  # LIKE wildcards are matched literally

    await store.update("img03.png", ImageRecordChanges(starred=True))
    first = await store.get_many(limit=2, starred_first=True)
    assert first.items[0].image_name == "img03.png" and first.items[0].starred
    assert (await store.get_many(limit=2, starred_first=False)).items[0].image_name == "img24.png"


async def test_update_changes_only_given_fields_and_the_trigger_keeps_updated_at(backend: AnyBackend) -> None:
    before = await backend.images.save(new("a.png"))
    # The stamps have millisecond resolution: wait for the clock to pass the first one, then change the record.
    await async_wait_until(lambda: datetime.now(UTC) > before.updated_at + timedelta(milliseconds=1),
                           "the clock to pass the first updated_at")
    after = await backend.images.update("a.png", ImageRecordChanges(image_category=ImageCategory.control))
    assert after.image_category is ImageCategory.control and after.is_intermediate == before.is_intermediate
    assert after.updated_at > before.updated_at and after.created_at == before.created_at
    with pytest.raises(ImageNotFoundError):
        await backend.images.update("nope.png", ImageRecordChanges(starred=True))
    with pytest.raises(ValueError):
        ImageRecordChanges.model_validate({"width": 5})


async def test_deletes(backend: AnyBackend) -> None:
    for i in range(4):
        await backend.images.save(new(f"i{i}.png", is_intermediate=i < 2))
    assert await backend.images.delete("i3.png") is True
    assert await backend.images.delete("i3.png") is False
    assert sorted(await backend.images.delete_intermediates()) == ["i0.png", "i1.png"]
    assert await backend.images.delete_many(["x.png", "i2.png"]) == ["i2.png"]
    assert (await backend.images.get_many()).total == 0


async def test_bad_paging_arguments_are_refused(backend: AnyBackend) -> None:
    with pytest.raises(ValueError):
        await backend.images.get_many(limit=0)
    with pytest.raises(ValueError):
        await backend.images.get_many(offset=-1)
    with pytest.raises(ValueError):
        await backend.images.get_many(order_dir="SIDEWAYS")  # type: ignore[arg-type]
