"""Image store benchmark: list pages on 100,000 records, through the store and over HTTP, and save throughput.

Run: .venv/bin/python bench/images.py [--records 100000] [--saves 40] [--http-seconds 3]

For each listing (first, middle and last page; with and without category filters) the store's
``get_many`` (aiosqlite thread hop, row -> pydantic records, page + total count) is timed against the
identical SQL (``build_list_query``) run with a plain ``sqlite3`` connection on the same file, in the
same run; the ratio is store / direct. Save throughput is 512x512 RGB images through the images
service (PNG + metadata chunks + WebP thumbnail + record).

Over HTTP, requests/s of ``GET /api/v1/images/`` pages on the real app (uvicorn on 127.0.0.1, the host's
middleware, SQLite) are compared with an empty Litestar app whose one handler returns the same response
bytes, served the same way in the same run; the load comes from a child process (``http_load.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from invoke_local_file_storage import LocalImageFileStorage
from invoke_sdk.images import ImageCategory
from invoke_sqlite_storage import SqliteBackend
from invoke_sqlite_storage.images import build_list_query
from litestar import Litestar, Request, Response, get
from PIL import Image

from invoke_host.images import ImagesService

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from http_load import requests_per_second

from tests.queue.live_server import live_server

CATEGORIES = [c.value for c in ImageCategory]


def seed(path: Path, n: int) -> None:
    rng = random.Random(1)
    conn = sqlite3.connect(path)
    rows = []
    for i in range(n):
        stamp = f"2026-{1 + i // 2_600_000:02d}-{1 + (i // 86_400) % 28:02d}T{(i // 3600) % 24:02d}:" \
                f"{(i // 60) % 60:02d}:{i % 60:02d}.000Z"
        rows.append((
            f"{uuid.UUID(int=rng.getrandbits(128))}.png", "internal" if rng.random() < 0.9 else "external",
            rng.choices(CATEGORIES, weights=[70, 10, 10, 8, 2])[0], 512, 512, "s", "n",
            '{"prompt": "a photo of a cat"}', int(rng.random() < 0.3), int(rng.random() < 0.02), 0, stamp, stamp,
        ))
    conn.executemany(
        "INSERT INTO images (image_name, image_origin, image_category, width, height, session_id, node_id, metadata, "
        "is_intermediate, starred, has_workflow, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()


def timed(fn: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


async def atimed(fn: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def _empty_app(bodies: dict[bytes, bytes]) -> Litestar:
    """The baseline: Litestar with one handler at the listing's path that returns, for each query string, the
    bytes the real app answered it with."""

    @get("/api/v1/images/", media_type="application/json", sync_to_thread=False)
    def listing(request: Request[Any, Any, Any]) -> Response[bytes]:
        return Response(content=bodies[request.scope["query_string"]], media_type="application/json")

    return Litestar([listing], openapi_config=None)


def _listing_app(root: Path, page_cache_bytes: int | None = None) -> Litestar:
    import invoke_local_file_storage.plugin as files_plugin
    import invoke_sqlite_storage.plugin as sqlite_plugin

    from invoke_host.app import create_app
    from invoke_host.config import HostConfig

    cache: dict[str, Any] = {} if page_cache_bytes is None else {"max_image_page_cache_bytes": page_cache_bytes}
    return create_app(HostConfig(root=root, processor_enabled=False, **cache),
                      [("sqlite_storage", sqlite_plugin), ("local_file_storage", files_plugin)], entry_points=False)


def http_listings(root: Path, records: int, seconds: float, rounds: int, page_cache_bytes: int | None = None) -> None:
    """Requests/s of listing pages on the real app against the empty app serving the same bytes, same run.

    Both servers stay up; each round measures one then the other, and the median of the rounds' ratios is
    printed, so load from elsewhere on the machine falls on both sides alike.
    """
    import httpx

    middle = records // 2 // 50 * 50
    cases: list[tuple[str, str]] = [
        ("first page, all, starred first", "limit=50"),
        ("first page, non-intermediate general+user", "limit=50&is_intermediate=false&categories=general"
         "&categories=user"),
        ("middle page by offset", f"limit=50&offset={middle}"),
    ]
    print(f"\nover HTTP, {records:,} records: {rounds} rounds of {seconds:g} s per side, load from a child process")
    print(f"{'listing':44} {'app req/s':>10} {'empty req/s':>12} {'app/empty':>10}")
    with live_server(_listing_app(root, page_cache_bytes)) as url, httpx.Client(base_url=url, timeout=60) as http:
        if "next_cursor" in http.get("/api/v1/images/?limit=1").json():
            # Walk to the middle in big pages; a cursor marks a position, whatever the page size.
            cursor, seen = None, 0
            while seen < middle:
                params: dict[str, Any] = {"limit": min(1000, middle - seen), **({"cursor": cursor} if cursor else {})}
                page = http.get("/api/v1/images/", params=params).json()
                cursor, seen = page["next_cursor"], seen + len(page["items"])
            cases.append(("middle page by cursor", f"limit=50&cursor={cursor}"))
        bodies = {query.encode(): http.get(f"/api/v1/images/?{query}").content for _, query in cases}
        with live_server(_empty_app(bodies)) as empty_url:
            for label, query in cases:
                path = f"/api/v1/images/?{query}"
                assert httpx.get(empty_url + path).content == bodies[query.encode()]
                ours, empty = [], []
                for _ in range(rounds):
                    empty.append(requests_per_second(empty_url, [path], seconds=seconds))
                    ours.append(requests_per_second(url, [path], seconds=seconds))
                ratio = statistics.median(o / e for o, e in zip(ours, empty, strict=True))
                print(f"{label:44} {statistics.median(ours):10,.0f} {statistics.median(empty):12,.0f} {ratio:9.0%}",
                      flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--saves", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--http-seconds", type=float, default=2.0, help="each HTTP measurement (0: none)")
    parser.add_argument("--http-rounds", type=int, default=3, help="HTTP measurements per side and listing")
    parser.add_argument("--only-http", action="store_true", help="skip the store listings and the saves")
    parser.add_argument("--page-cache-bytes", type=int, default=None,
                        help="max_image_page_cache_bytes of the real app (default: the setting's; 0: no cache)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("httpx", "invoke_host"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="images-bench-") as tmp:
        await run(Path(tmp), args)


async def run(root: Path, args: argparse.Namespace) -> None:
    backend = SqliteBackend(root / "databases" / "invoke.db")
    await backend.start()
    await backend.stop()
    t = time.perf_counter()
    seed(backend.path, args.records)
    print(f"seeded {args.records:,} records in {time.perf_counter() - t:.1f}s")
    backend = SqliteBackend(backend.path)  # a fresh instance: Database does not support reopening
    await backend.start()
    try:
        if not args.only_http:
            await store_listings(backend, args.repeat)
        if args.http_seconds > 0:
            http_listings(root, args.records, args.http_seconds, args.http_rounds, args.page_cache_bytes)
        if not args.only_http:
            await saves(backend, root, args.saves)
    finally:
        await backend.stop()


async def store_listings(backend: SqliteBackend, repeat: int) -> None:
    direct = sqlite3.connect(backend.path)
    limit = 50
    listings: list[tuple[str, dict[str, Any]]] = [
        ("all, starred first", {}),
        ("non-intermediate, general+user", {"is_intermediate": False, "categories": ["general", "user"]}),
        ("non-intermediate, mask only", {"is_intermediate": False, "categories": ["mask"]}),
        ("exclude general, newest first", {"exclude_categories": ["general"], "starred_first": False}),
    ]
    print(f"\n{'listing':38} {'page':>6} {'store ms':>9} {'direct ms':>10} {'ratio':>6}")
    ratios = []
    for label, filters in listings:
        counting = build_list_query(**filters)
        total = direct.execute(counting.count_sql, counting.count_params)
        count = int(total.fetchone()[0])
        last = max(0, (count - 1) // limit * limit)
        for page, offset in (("first", 0), ("middle", last // 2 // limit * limit), ("last", last)):
            query = build_list_query(offset=offset, limit=limit, **filters)

            def run_direct(q: Any = query) -> None:
                if not direct.execute(q.page_sql, q.page_params).fetchall():
                    direct.execute(q.count_sql, q.count_params).fetchone()

            async def run_store(o: int = offset, f: dict[str, Any] = filters) -> None:
                await backend.images.get_many(offset=o, limit=limit, **f)

            run_direct()
            await run_store()
            d = timed(run_direct, repeat)
            s = await atimed(run_store, repeat)
            ratios.append(s / d)
            print(f"{label:38} {page:>6} {s * 1000:9.2f} {d * 1000:10.2f} {s / d:6.2f}")
    print(f"\nlist ratio store/direct: median {statistics.median(ratios):.2f}x, worst {max(ratios):.2f}x")
    direct.close()


async def saves(backend: SqliteBackend, root: Path, count: int) -> None:
    service = ImagesService(backend.images, LocalImageFileStorage(root))
    await service.start()
    rng = random.Random(2)
    images = [Image.frombytes("RGB", (512, 512), rng.randbytes(512 * 512 * 3)).resize((512, 512)) for _ in range(4)]
    smooth = [Image.effect_mandelbrot((512, 512), (-2, -1.5, 1, 1.5), 50 + i).convert("RGB") for i in range(4)]
    for label, pool in (("noise", images), ("smooth", smooth)):
        t = time.perf_counter()
        for i in range(count):
            await service.save(pool[i % len(pool)], metadata={"i": i}, graph='{"nodes": {}, "edges": []}')
        dt = time.perf_counter() - t
        print(f"save 512x512 ({label}): {count / dt:.1f} images/s ({dt / count * 1000:.1f} ms each)")


if __name__ == "__main__":
    asyncio.run(main())
