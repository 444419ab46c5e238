"""The cache of image listing pages and records: bounded, and never stale, whichever process changes a record.

The server runs for real (uvicorn on 127.0.0.1); the changes come from another real process with a storage backend
of its own on the same SQLite file or PostgreSQL database, so only the backend's records version can tell the
server that its cached pages are out of date.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import invoke_local_file_storage.plugin as files_plugin
import invoke_postgres_storage.plugin as postgres_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import pytest
from invoke_local_file_storage import LocalImageFileStorage
from invoke_sdk.images import ImageRecordChanges, ImageRecordStore, ImageVersionedRecordStore
from invoke_sdk.listing_anchors import ListingAnchors
from invoke_sqlite_storage import SqliteBackend
from invoke_sqlite_storage.records_version import RecordsVersion

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.host import build_host
from invoke_host.images import ImagesService
from invoke_host.images.page_cache import CachedResponse, ImagePageCache
from tests.images.test_record_store import new
from tests.queue.live_server import live_server
from tests.storage_backends import BackendMaker, backend_maker

__all__ = ["backend_maker"]  # the cross-process tests run on every backend

REPO = Path(__file__).resolve().parents[2]
LIST = "/api/v1/images/"


def _other_process(maker: BackendMaker, *ops: list[str]) -> None:
    """Apply ``ops`` from a separate Python process with its own backend on the same database."""
    target = str(maker.path) if maker.kind == "sqlite" else str(maker.url)
    done = subprocess.run(
        [sys.executable, "-m", "tests.images.other_process_writer", maker.kind, target, json.dumps(list(ops))],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr


@contextmanager
def _server(maker: BackendMaker, root: Path, **config: Any) -> Iterator[tuple[httpx.Client, ImagesService]]:
    if maker.kind == "sqlite":
        assert maker.path is not None
        # The server's root is the one whose databases/invoke.db the other process writes.
        host = build_host(HostConfig(root=maker.path.parents[1], processor_enabled=False, **config),
                          [sqlite_plugin, files_plugin], entry_points=False)
    else:
        host = build_host(HostConfig(root=root, database_url=maker.url, processor_enabled=False, **config),
                          [postgres_plugin, files_plugin], entry_points=False)
    assert host.images is not None
    with live_server(create_app(host=host)) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http, host.images


@pytest.fixture
def maker(backend_maker: BackendMaker, tmp_path: Path) -> BackendMaker:
    if backend_maker.kind == "sqlite":
        # Where the server's SQLite backend keeps its file under its root (root/databases/invoke.db).
        return BackendMaker("sqlite", path=tmp_path / "root" / "databases" / "invoke.db")
    return backend_maker


def _page(http: httpx.Client, query: str = "limit=10") -> dict[str, Any]:
    r = http.get(f"{LIST}?{query}")
    assert r.status_code == 200, r.text
    first = r.json()
    # Asked again with nothing changed: the same bytes (from the cache, checked below).
    again = http.get(f"{LIST}?{query}")
    assert again.content == r.content
    result: dict[str, Any] = first
    return result


def _names(page: dict[str, Any]) -> list[str]:
    return [item["image_name"] for item in page["items"]]


def test_changes_from_another_process_show_on_the_next_page(maker: BackendMaker, tmp_path: Path) -> None:
    _other_process(maker, ["insert", "a.png"], ["insert", "b.png"], ["insert", "c.png"])
    with _server(maker, tmp_path / "server") as (http, images):
        cache = images.page_cache
        assert cache is not None
        page = _page(http)
        assert _names(page) == ["c.png", "b.png", "a.png"] and page["total"] == 3
        record = http.get("/api/v1/images/i/a.png").json()
        assert record["starred"] is False
        assert len(cache) == 2  # the page and the record are served from the cache from now on

        _other_process(maker, ["insert", "d.png"])
        page = _page(http)
        assert _names(page) == ["d.png", "c.png", "b.png", "a.png"] and page["total"] == 4

        _other_process(maker, ["star", "a.png"])
        page = _page(http)
        assert _names(page) == ["a.png", "d.png", "c.png", "b.png"] and page["items"][0]["starred"] is True
        assert http.get("/api/v1/images/i/a.png").json()["starred"] is True

        _other_process(maker, ["category", "b.png", "mask"])
        masks = _page(http, "limit=10&categories=mask")
        assert _names(masks) == ["b.png"] and masks["total"] == 1
        general = _page(http, "limit=10&categories=general")
        assert _names(general) == ["a.png", "d.png", "c.png"] and general["total"] == 3

        _other_process(maker, ["delete", "c.png"])
        page = _page(http)
        assert _names(page) == ["a.png", "d.png", "b.png"] and page["total"] == 3
        assert _page(http, "limit=10&categories=general")["total"] == 2
        assert http.get("/api/v1/images/i/c.png").status_code == 404


def test_the_servers_own_changes_show_at_once(maker: BackendMaker, tmp_path: Path) -> None:
    _other_process(maker, ["insert", "a.png"], ["insert", "b.png"])
    with _server(maker, tmp_path / "server") as (http, _images):
        assert _page(http, "limit=1")["next_cursor"] is not None
        assert http.patch("/api/v1/images/i/a.png", json={"starred": True}).status_code == 200
        page = _page(http, "limit=1")
        assert _names(page) == ["a.png"] and page["total"] == 2
        assert http.delete("/api/v1/images/i/a.png").status_code == 200
        page = _page(http, "limit=1")
        assert _names(page) == ["b.png"] and page["total"] == 1 and page["next_cursor"] is None


def test_the_cache_stays_within_its_bound_and_big_pages_pass_uncached(maker: BackendMaker, tmp_path: Path) -> None:
    _other_process(maker, *(["insert", f"img{i:02d}.png"] for i in range(30)))
    bound = 8 * 1024
    with _server(maker, tmp_path / "server", max_image_page_cache_bytes=bound) as (http, images):
        cache = images.page_cache
        assert cache is not None and cache.max_bytes == bound
        for limit in range(1, 31):
            page = _page(http, f"limit={limit}")
            assert len(page["items"]) == limit and page["total"] == 30
            assert cache.size_bytes <= bound
        assert 0 < len(cache) < 30  # small pages kept, the rest evicted or never stored
        big = http.get(f"{LIST}?limit=30")
        assert len(big.content) > bound and big.json()["total"] == 30


def test_no_cache_when_the_setting_is_zero(tmp_path: Path) -> None:
    host = build_host(HostConfig(root=tmp_path, processor_enabled=False, max_image_page_cache_bytes=0),
                      [sqlite_plugin, files_plugin], entry_points=False)
    assert host.images is not None and host.images.page_cache is None


class _PlainStore:
    """A third-party record store written before records_version: everything but that method."""

    def __init__(self, inner: ImageRecordStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "records_version":
            raise AttributeError(name)
        return getattr(self._inner, name)

    async def get_many(self, **filters: Any) -> Any:
        return await self._inner.get_many(**filters)


async def test_a_store_without_a_records_version_is_served_uncached(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "invoke.db")
    await backend.start()
    try:
        assert isinstance(backend.images, ImageVersionedRecordStore)
        plain = _PlainStore(backend.images)
        assert not isinstance(plain, ImageVersionedRecordStore)
        service = ImagesService(plain, LocalImageFileStorage(tmp_path), page_cache_bytes=1024 * 1024)  # type: ignore[arg-type]
        assert service.page_cache is None and await service.records_version() is None
        await backend.images.save(new("a.png"))
        assert (await service.get_many()).total == 1
    finally:
        await backend.stop()


async def test_the_records_version_moves_with_every_kind_of_change(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "invoke.db")
    await backend.start()
    try:
        images = backend.images
        seen = [await images.records_version()]
        await images.save(new("a.png"))
        seen.append(await images.records_version())
        await images.update("a.png", ImageRecordChanges(starred=True))
        seen.append(await images.records_version())
        await images.get_many()  # a read moves nothing
        seen.append(await images.records_version())
        await images.delete("a.png")
        seen.append(await images.records_version())
        # Up, with every change (an update moves it twice: the updated_at trigger's own UPDATE counts too).
        assert seen[0] == 0 and seen[0] < seen[1] < seen[2] == seen[3] < seen[4]
    finally:
        await backend.stop()


def _response(body: bytes) -> CachedResponse:
    return CachedResponse(200, ((b"content-type", b"application/json"),), body)


def test_page_cache_evicts_the_least_recently_used_within_its_bound() -> None:
    one = _response(b"x" * 1000)
    size = one.size + len(b"/k0")
    cache = ImagePageCache(3 * size)
    assert cache.get(b"/k0", 1) is None  # version 1 seen
    for i in range(3):
        cache.put(f"/k{i}".encode(), 1, one)
    assert len(cache) == 3 and cache.size_bytes == 3 * size
    assert cache.get(b"/k0", 1) is one  # k0 now the most recently used
    cache.put(b"/k3", 1, one)
    assert cache.get(b"/k1", 1) is None and cache.get(b"/k0", 1) is one and cache.get(b"/k3", 1) is one
    assert cache.size_bytes == 3 * size
    cache.put(b"/huge", 1, _response(b"x" * (4 * size)))
    assert cache.get(b"/huge", 1) is None and len(cache) == 3


def test_page_cache_drops_everything_on_a_new_version_and_ignores_pages_of_an_old_one() -> None:
    cache = ImagePageCache(1 << 20)
    cache.get(b"/a", 5)
    cache.put(b"/a", 5, _response(b"five"))
    assert cache.get(b"/a", 5) is not None
    assert cache.get(b"/a", 6) is None and len(cache) == 0 and cache.size_bytes == 0
    cache.put(b"/a", 5, _response(b"read before the change"))  # a slow request that read version 5
    assert cache.get(b"/a", 6) is None
    with pytest.raises(ValueError, match="max_bytes"):
        ImagePageCache(0)


@pytest.mark.parametrize("journal_mode", ["WAL", "DELETE"])
async def test_the_sqlite_records_version_sees_every_commit_of_another_connection(
    tmp_path: Path, journal_mode: str
) -> None:
    # WAL: the header compare answers most reads; DELETE (no -shm file): every read is the counter's query.
    path = tmp_path / "invoke.db"
    backend = SqliteBackend(path)
    await backend.start()
    await backend.stop()
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        assert other.execute(f"PRAGMA journal_mode={journal_mode}").fetchone()[0].upper() == journal_mode
        version = RecordsVersion(path)
        try:
            seen = [version.read(), version.read()]
            other.execute("INSERT INTO images (image_name, image_origin, image_category, width, height) "
                          "VALUES ('a.png', 'internal', 'general', 8, 8)")
            seen.append(version.read())
            other.execute("INSERT INTO image_counts VALUES ('x', 'y', 0, 1)")  # a commit to another table
            seen.append(version.read())
            other.execute("UPDATE images SET starred = 1")
            seen.append(version.read())
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            other.execute("DELETE FROM images")
            seen.append(version.read())
            assert seen[0] == seen[1] == 0 and seen[1] < seen[2] == seen[3] < seen[4] < seen[5]
        finally:
            version.close()


# Every listing the API offers; the cursor and offset pages are deep enough to start from a remembered place.
SHAPES = {
    "first": "limit=4",
    "filtered": "limit=4&is_intermediate=false&categories=general&categories=user",
    "offset": "limit=4&offset=9",
    "filtered offset": "limit=4&is_intermediate=false&categories=general&categories=user&offset=5",
    "newest first, offset": "limit=4&starred_first=false&offset=10",
}
# Each write from another process, and a record it moves in or out of every shape above.
WRITES: list[tuple[str, list[str]]] = [
    ("star", ["star", "img03.png"]),
    ("category (the nearest thing to a board here)", ["category", "img17.png", "mask"]),
    ("intermediate flag on", ["intermediate", "img18.png", "true"]),
    ("intermediate flag off", ["intermediate", "img18.png", "false"]),
    ("delete", ["delete", "img16.png"]),
    ("insert", ["insert", "late.png"]),
]


def _shapes(http: httpx.Client, cursor: str) -> dict[str, bytes]:
    queries = {**SHAPES, "cursor": f"limit=4&cursor={cursor}"}
    return {name: http.get(f"{LIST}?{query}").content for name, query in queries.items()}


def test_every_write_refreshes_every_cached_page_shape(maker: BackendMaker, tmp_path: Path) -> None:
    _other_process(maker, *(["insert", f"img{i:02d}.png"] for i in range(20)))
    with _server(maker, tmp_path / "cached") as (http, images), \
            _server(maker, tmp_path / "uncached", max_image_page_cache_bytes=0) as (plain, _plain_images):
        cache = images.page_cache
        assert cache is not None
        store: Any = images.records
        store.anchors = ListingAnchors(spacing=4)  # offset pages start from kept places, as deep ones do
        cursor = http.get(f"{LIST}?limit=4").json()["next_cursor"]
        before = _shapes(http, cursor)
        assert _shapes(http, cursor) == before and len(cache) == len(SHAPES) + 1  # every shape answered cached
        assert len(store.anchors) == 3  # and the three offset listings from their places
        for label, op in WRITES:
            _other_process(maker, op)
            assert http.get(f"{LIST}?limit=1").status_code == 200
            assert len(cache) == 1, label  # the write let go of every shape cached before it
            after = _shapes(http, cursor)
            assert after == _shapes(plain, cursor), label  # what the store reads now, byte for byte
            assert any(after[name] != before[name] for name in after), f"{label} moved no page: nothing was tested"
            assert _shapes(http, cursor) == after and len(cache) == len(SHAPES) + 2  # and cached again
            before = after


@pytest.mark.parametrize("backend_maker", ["postgres"], indirect=True)
def test_two_api_nodes_on_one_postgresql_see_each_others_changes(maker: BackendMaker, tmp_path: Path) -> None:
    _other_process(maker, *(["insert", f"img{i:02d}.png"] for i in range(6)))
    with _server(maker, tmp_path / "a") as (a, a_images), _server(maker, tmp_path / "b") as (b, b_images):
        for http in (a, b):
            assert _names(_page(http, "limit=3")) == ["img05.png", "img04.png", "img03.png"]
            assert _names(_page(http, "limit=3&offset=3")) == ["img02.png", "img01.png", "img00.png"]
        assert a_images.page_cache is not None and len(a_images.page_cache) == 2
        assert b_images.page_cache is not None and len(b_images.page_cache) == 2
        assert a.patch("/api/v1/images/i/img00.png", json={"starred": True}).status_code == 200
        page = _page(b, "limit=3")
        assert _names(page) == ["img00.png", "img05.png", "img04.png"] and page["items"][0]["starred"] is True
        assert _names(_page(b, "limit=3&offset=3")) == ["img03.png", "img02.png", "img01.png"]
        assert b.patch("/api/v1/images/i/img04.png", json={"is_intermediate": True}).status_code == 200
        page = _page(a, "limit=3&is_intermediate=false")
        assert _names(page) == ["img00.png", "img05.png", "img03.png"] and page["total"] == 5
        assert b.delete("/api/v1/images/i/img05.png").status_code == 200
        assert _names(_page(a, "limit=3")) == ["img00.png", "img04.png", "img03.png"]
        assert a.get("/api/v1/images/i/img05.png").status_code == 404
