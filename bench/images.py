"""Image store benchmark: list-page latency on 100,000 records against the same SQL run directly, and save throughput.

Run: .venv/bin/python bench/images.py [--records 100000] [--saves 40]

For each listing (first, middle and last page; with and without category filters) the store's
``get_many`` (aiosqlite thread hop, row -> pydantic records, page + total count) is timed against the
identical SQL (``build_list_query``) run with a plain ``sqlite3`` connection on the same file, in the
same run; the ratio is store / direct. Save throughput is 512x512 RGB images through the images
service (PNG + metadata chunks + WebP thumbnail + record).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from invoke_local_file_storage import LocalImageFileStorage
from invoke_sdk.images import ImageCategory
from invoke_sqlite_storage import SqliteBackend
from invoke_sqlite_storage.images import build_list_query
from PIL import Image

from invoke_host.images import ImagesService

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


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--saves", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="images-bench-"))
    backend = SqliteBackend(root / "databases" / "invoke.db")
    await backend.start()
    await backend.stop()
    t = time.perf_counter()
    seed(backend.path, args.records)
    print(f"seeded {args.records:,} records in {time.perf_counter() - t:.1f}s")
    backend = SqliteBackend(backend.path)  # a fresh instance: Database does not support reopening
    await backend.start()
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
        total = direct.execute(build_list_query(**filters).count_sql, build_list_query(**filters).count_params)
        count = int(total.fetchone()[0])
        last = max(0, (count - 1) // limit * limit)
        for page, offset in (("first", 0), ("middle", last // 2 // limit * limit), ("last", last)):
            query = build_list_query(offset=offset, limit=limit, **filters)

            def run_direct(q: Any = query) -> None:
                direct.execute(q.page_sql, q.page_params).fetchall()
                direct.execute(q.count_sql, q.count_params).fetchone()

            async def run_store(o: int = offset, f: dict[str, Any] = filters) -> None:
                await backend.images.get_many(offset=o, limit=limit, **f)

            run_direct()
            await run_store()
            d = timed(run_direct, args.repeat)
            s = await atimed(run_store, args.repeat)
            ratios.append(s / d)
            print(f"{label:38} {page:>6} {s * 1000:9.2f} {d * 1000:10.2f} {s / d:6.2f}")
    print(f"\nlist ratio store/direct: median {statistics.median(ratios):.2f}x, worst {max(ratios):.2f}x")

    service = ImagesService(backend.images, LocalImageFileStorage(root))
    await service.start()
    rng = random.Random(2)
    images = [Image.frombytes("RGB", (512, 512), rng.randbytes(512 * 512 * 3)).resize((512, 512)) for _ in range(4)]
    smooth = [Image.effect_mandelbrot((512, 512), (-2, -1.5, 1, 1.5), 50 + i).convert("RGB") for i in range(4)]
    for label, pool in (("noise", images), ("smooth", smooth)):
        t = time.perf_counter()
        for i in range(args.saves):
            await service.save(pool[i % len(pool)], metadata={"i": i}, graph='{"nodes": {}, "edges": []}')
        dt = time.perf_counter() - t
        print(f"save 512x512 ({label}): {args.saves / dt:.1f} images/s ({dt / args.saves * 1000:.1f} ms each)")
    await backend.stop()
    direct.close()


if __name__ == "__main__":
    asyncio.run(main())
