"""Image store benchmark: list pages on 100,000 records, through the store and over HTTP, and save throughput.

Run: .venv/bin/python bench/images.py [--records 100000] [--saves 40] [--http-seconds 3]

For each listing (first, middle and last page; with and without category filters) the store's
``get_many`` (aiosqlite thread hop, row -> pydantic records, page + total count) is timed against the
identical SQL (``build_list_query``) run with a plain ``sqlite3`` connection on the same file, in the
same run; the ratio is store / direct. Save throughput is 512x512 RGB images through the images
service (PNG + metadata chunks + WebP thumbnail + record).

Over HTTP, requests/s of ``GET /api/v1/images/`` pages on the real app (uvicorn on 127.0.0.1, the host's
middleware, SQLite) are compared with an empty Litestar app whose one handler returns the same response
bytes, served the same way in the same run; the load comes from a child process (``http_load.py``). Each real
app runs in a child process of its own; ``--compare-with CHECKOUT`` runs a second one from another checkout (a
``git worktree`` of the commit before) in the same rounds, so "before" and "after" come from one run:

    git worktree add /tmp/images-base main
    .venv/bin/python bench/images.py --only-http --records 100000 --compare-with /tmp/images-base
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
from invoke_local_file_storage import LocalImageFileStorage
from invoke_sdk.images import ImageCategory
from invoke_sqlite_storage import SqliteBackend
from invoke_sqlite_storage.images import build_list_query, encode_cursor
from litestar import Litestar, Request, Response, get
from PIL import Image

from invoke_host.images import ImagesService

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from http_load import load

from tests.queue.live_server import live_server

CATEGORIES = [c.value for c in ImageCategory]
REPO = Path(__file__).resolve().parents[1]


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


def _empty_app(bodies: dict[bytes, bytes], default: bytes | None = None) -> Litestar:
    """The baseline: Litestar with one handler at the listing's path that returns, for each query string, the
    bytes the real app answered it with (``default`` for a query it was not given: the pages asked for once)."""

    @get("/api/v1/images/", media_type="application/json", sync_to_thread=False)
    def listing(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = bodies.get(request.scope["query_string"], default)
        assert body is not None
        return Response(content=body, media_type="application/json")

    return Litestar([listing], openapi_config=None)


# Runs in a child process: the real app of one checkout (its sources first on PYTHONPATH), on the given data root.
_SERVE = """
import socket, sys
from pathlib import Path
import uvicorn
import invoke_local_file_storage.plugin as files_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
from invoke_host.app import create_app
from invoke_host.config import HostConfig
root, cache = Path(sys.argv[1]), sys.argv[2]
settings = {} if cache == "default" else {"max_image_page_cache_bytes": int(cache)}
app = create_app(HostConfig(root=root, processor_enabled=False, **settings),
                 [("sqlite_storage", sqlite_plugin), ("local_file_storage", files_plugin)], entry_points=False)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on")).run(sockets=[sock])
"""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` so far, all its threads (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(url: str, pid: int, paths: list[str], seconds: float) -> tuple[float, float]:
    """``(requests/s, server CPU ms per request)`` of one load run: the CPU over the whole run divided by every
    request it made (warm-up included), so other processes' load on the machine does not count."""
    before = _cpu_seconds(pid)
    counted, made = load(url, paths, seconds=seconds)
    return counted / seconds, (_cpu_seconds(pid) - before) * 1000 / max(made, 1)


@contextmanager
def _served(checkout: Path, root: Path, page_cache_bytes: int | None) -> Iterator[tuple[str, int]]:
    """The real app of ``checkout`` in a child process on ``root``'s database; yields its base URL and pid."""
    paths = [checkout, checkout / "sdk", checkout / "plugins" / "sqlite_storage",
             checkout / "plugins" / "local_file_storage"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}
    cache = "default" if page_cache_bytes is None else str(page_cache_bytes)
    child = subprocess.Popen([sys.executable, "-c", _SERVE, str(root), cache], env=env, cwd=checkout,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api/v1/images/?limit=1", timeout=5).raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url, child.pid
    finally:
        child.terminate()
        child.wait(30)


@contextmanager
def _served_empty(app: Litestar) -> Iterator[tuple[str, int]]:
    """The empty app, served from a thread of this process: its CPU is this process's, which does nothing else
    while a load runs."""
    with live_server(app) as url:
        yield url, os.getpid()


def _cursor_queries(db: Path, start: int, count: int, step: int) -> list[str]:
    """``count`` queries for the default listing's pages by cursor, from the place of row ``start`` on, ``step``
    rows apart: read off the database, so that no page is asked for (and cached) before it is measured."""
    with closing(sqlite3.connect(db)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT starred, created_at, rowid AS _rowid FROM images WHERE deleted_at IS NULL "
            "ORDER BY starred DESC, created_at DESC, rowid DESC LIMIT ? OFFSET ?", (count * step, start),
        ).fetchall()
    return [f"limit=50&cursor={encode_cursor(r, starred_first=True, order_dir='DESC')}" for r in rows[::step]]


def http_listings(root: Path, records: int, seconds: float, rounds: int, page_cache_bytes: int | None = None,
                  compare_with: Path | None = None) -> None:
    """Requests/s of listing pages on the real app against the empty app serving the same bytes, same run.

    Every server stays up; each round measures the empty app, then this checkout's app, then (``compare_with``)
    the other checkout's, and the median of the rounds' ratios to the empty app is printed, so load from
    elsewhere on the machine falls on every side alike. Two kinds of case: one page asked for over and over (what
    the page cache answers), and pages each asked for once (a client paging through: a miss of the cache for
    every request; each round and each server gets pages of its own). For those the empty app answers every query
    with one page of the same size.
    """
    middle = records // 2 // 50 * 50
    filtered = "limit=50&is_intermediate=false&categories=general&categories=user"
    once = 2_000  # more than a round's requests: no page is asked for twice
    repeated: list[tuple[str, str]] = [
        ("first page, all, starred first", "limit=50"),
        ("first page, non-intermediate general+user", filtered),
        ("middle page by offset", f"limit=50&offset={middle}"),
    ]
    sides = [("this checkout", REPO)] + ([("compare-with", compare_with)] if compare_with is not None else [])
    print(f"\nover HTTP, {records:,} records: {rounds} rounds of {seconds:g} s per side, load from a child process")
    print("(cpu: the server process's CPU ms per request, all its threads, median of the rounds)")
    print(f"{'listing':52} {'empty req/s':>12} {'cpu':>5}"
          + "".join(f" {name + ' req/s':>20} {'/empty':>7} {'cpu':>5}" for name, _ in sides))
    with ExitStack() as stack:
        served = [stack.enter_context(_served(checkout, root, page_cache_bytes)) for _, checkout in sides]
        urls = [url for url, _ in served]
        http = stack.enter_context(httpx.Client(base_url=urls[0], timeout=120))
        if "next_cursor" in http.get("/api/v1/images/?limit=1").json():
            cursor = _cursor_queries(root / "databases" / "invoke.db", middle - 1, 1, 1)[0]
            repeated.append(("middle page by cursor", cursor))
        cases: list[tuple[str, list[list[list[str]]]]] = [(label, [[[q]] * len(sides)] * rounds)
                                                          for label, q in repeated]
        n = once * rounds * len(sides)
        spread = [[[k * rounds * len(sides) + r * len(sides) + s for k in range(once)] for s in range(len(sides))]
                  for r in range(rounds)]  # which of n places each round and side gets: interleaved, all distinct
        # Spread over the rest of the listing, as a client paging on would ask for them.
        step = max(1, (records - middle - 50) // n)
        deep = [f"limit=50&offset={middle + k * step}" for k in range(n)]
        cases.append(("middle pages by offset, each asked for once", [[[deep[i] for i in side] for side in rnd]
                                                                       for rnd in spread]))
        matching = int(http.get(f"/api/v1/images/?{filtered}").json()["total"])
        step_f = max(1, (matching - middle // 2 - 50) // n)
        deep_f = [f"{filtered}&offset={middle // 2 + k * step_f}" for k in range(n)]
        cases.append(("non-intermediate general+user by offset, each once", [[[deep_f[i] for i in side]
                                                                               for side in rnd] for rnd in spread]))
        if len(repeated) == 4:
            by_cursor = _cursor_queries(root / "databases" / "invoke.db", middle, n, step)
            cases.append(("middle pages by cursor, each asked for once", [[[by_cursor[i] for i in side]
                                                                           for side in rnd] for rnd in spread]))
        bodies = {q.encode(): http.get(f"/api/v1/images/?{q}").content for _, q in repeated}
        default = http.get(f"/api/v1/images/?limit=50&offset={middle - 50}").content
        empty_server = stack.enter_context(_served_empty(_empty_app(bodies, default)))
        for label, per_round in cases:
            empty: list[tuple[float, float]] = []
            ours: list[list[tuple[float, float]]] = [[] for _ in sides]
            for queries in per_round:
                empty.append(_measure(*empty_server, [f"/api/v1/images/?{q}" for q in queries[0]], seconds))
                for side, (url, pid) in enumerate(served):
                    ours[side].append(_measure(url, pid, [f"/api/v1/images/?{q}" for q in queries[side]], seconds))
            ratios = [statistics.median(a[0] / e[0] for a, e in zip(o, empty, strict=True)) for o in ours]
            cells = "".join(f" {statistics.median(r for r, _ in o):20,.0f} {ratio:7.0%} "
                            f"{statistics.median(c for _, c in o):5.2f}" for o, ratio in zip(ours, ratios, strict=True))
            print(f"{label:52} {statistics.median(r for r, _ in empty):12,.0f} "
                  f"{statistics.median(c for _, c in empty):5.2f}{cells}", flush=True)


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
    parser.add_argument("--compare-with", type=Path, default=None,
                        help="another checkout (a git worktree) whose app runs beside this one's, the same rounds")
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
            http_listings(root, args.records, args.http_seconds, args.http_rounds, args.page_cache_bytes,
                          args.compare_with)
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
