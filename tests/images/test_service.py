from __future__ import annotations

from pathlib import Path

import pytest
from invoke_local_file_storage import LocalImageFileStorage
from invoke_sdk.events import BaseEvent
from invoke_sdk.images import (
    ImageAddedEvent,
    ImageCategory,
    ImageDeletedEvent,
    ImageNotFoundError,
    ImageOrigin,
    ImageRecordChanges,
    ImageUpdatedEvent,
)
from invoke_sqlite_storage import SqliteBackend
from PIL import Image

from invoke_host.images import ImagesService


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in (root / "images").rglob("*") if p.is_file()) if (root / "images").exists() else []


async def test_save_writes_record_png_thumbnail_and_emits(
    service: ImagesService, tmp_path: Path, events: list[BaseEvent]
) -> None:
    graph = '{"nodes": {}, "edges": [], "old_field": true}'
    record = await service.save(
        Image.new("RGB", (64, 32)), session_id="s1", node_id="n1", graph=graph, metadata={"seed": 1},
        workflow={"name": "w"},
    )
    assert record.image_name.endswith(".png") and len(record.image_name) == 40
    assert (record.width, record.height, record.session_id, record.node_id) == (64, 32, "s1", "n1")
    assert record.image_origin is ImageOrigin.internal and record.has_workflow
    assert len(files_under(tmp_path)) == 2
    embedded = await service.embedded(record.image_name)
    assert embedded.graph == graph and embedded.metadata == '{"seed": 1}'
    assert isinstance(events[-1], ImageAddedEvent) and events[-1].image == record


async def test_a_failed_record_write_leaves_no_files(
    service: ImagesService, backend: SqliteBackend, tmp_path: Path
) -> None:
    await service.save(Image.new("RGB", (8, 8)))
    before = files_under(tmp_path)
    await backend.stop()  # the database goes away: the record write fails after the files were written
    with pytest.raises(RuntimeError, match="not open"):
        await service.save(Image.new("RGB", (16, 16)))
    assert files_under(tmp_path) == before


async def test_a_failed_file_write_leaves_no_row(
    service: ImagesService, backend: SqliteBackend, tmp_path: Path
) -> None:
    with pytest.raises(OSError):
        await service.save(Image.new("F", (8, 8)))  # PNG cannot hold mode F
    assert (await backend.images.get_many()).total == 0
    assert files_under(tmp_path) == []


async def test_bad_graph_text_is_refused_before_anything_is_written(service: ImagesService, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="graph must be JSON"):
        await service.save(Image.new("RGB", (8, 8)), graph="{not json")
    assert files_under(tmp_path) == []


async def test_update_delete_and_events(service: ImagesService, tmp_path: Path, events: list[BaseEvent]) -> None:
    a = await service.save(Image.new("RGB", (8, 8)), is_intermediate=True)
    b = await service.save(Image.new("RGB", (8, 8)))
    c = await service.save(Image.new("RGB", (8, 8)))
    updated = await service.update(b.image_name, ImageRecordChanges(image_category=ImageCategory.control))
    assert updated.image_category is ImageCategory.control and isinstance(events[-1], ImageUpdatedEvent)
    assert await service.delete_intermediates() == [a.image_name]
    assert isinstance(events[-1], ImageDeletedEvent) and events[-1].image_names == [a.image_name]
    await service.delete(b.image_name)
    with pytest.raises(ImageNotFoundError):
        await service.delete(b.image_name)
    assert await service.delete_many([c.image_name, "nope.png"]) == [c.image_name]
    assert files_under(tmp_path) == []


async def test_missing_file_reads_as_not_found(service: ImagesService, files: LocalImageFileStorage) -> None:
    record = await service.save(Image.new("RGB", (8, 8)))
    files.path(record.image_name).unlink()
    with pytest.raises(ImageNotFoundError):
        await service.read_file(record.image_name)
    with pytest.raises(ImageNotFoundError):
        await service.read_file("never-saved.png")


async def test_a_node_image_saved_again_on_a_retry_replaces_its_file_and_keeps_one_record(
    service: ImagesService, tmp_path: Path, events: list[BaseEvent]
) -> None:
    name = service.namer.node_image_name("session-1", "save#0", 0)
    assert name == service.namer.node_image_name("session-1", "save#0", 0) and name.endswith(".png")
    assert len({name, service.namer.node_image_name("session-1", "save#0", 1),
                service.namer.node_image_name("session-1", "save#1", 0),
                service.namer.node_image_name("session-2", "save#0", 0)}) == 4
    first = await service.save(Image.new("RGB", (8, 8), "red"), session_id="session-1", node_id="save",
                               image_name=name)
    again = await service.save(Image.new("RGB", (8, 8), "blue"), session_id="session-1", node_id="save",
                               image_name=name)
    assert again == first and first.image_name == name
    assert (await service.records.get_many(limit=10)).total == 1
    assert len(files_under(tmp_path)) == 2  # the PNG and its thumbnail, replaced in place
    assert (await service.get_pil(name)).getpixel((0, 0)) == (0, 0, 255)  # the retry's image
    assert [type(e) for e in events].count(ImageAddedEvent) == 1
