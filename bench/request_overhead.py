"""What the host adds to a small request: GET /api/v1/app/version (no service), GET /api/v1/queue/default/status
(the queue, one SQLite count) and PUT /api/v1/queue/default/processor/resume (the queue, nothing stored).

    .venv/bin/python bench/request_overhead.py                     # this checkout
    .venv/bin/python bench/request_overhead.py --against /tmp/base  # A/B: another checkout's invoke_host, same run

Requests are made as raw ASGI calls on one event loop (no HTTP client, no socket), so the time is the host's:
its middleware, routing, dependency injection, the handler, and for the status one SQLite count. Each figure is
the process's CPU time per request in the cheapest of 20 batches. With
``--against``, each side runs in its own process, alternately, several rounds; the ratios of the medians and of
the cheapest rounds are printed (above 1 means this checkout costs more; on a shared machine the cheapest rounds
are the steadier figure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PATHS = (
    "GET /api/v1/app/version",
    "GET /api/v1/queue/default/status",
    "PUT /api/v1/queue/default/processor/resume",
    "POST /api/v1/graphs/validate",
)
BATCHES = 20
# What each request sends: the validate route answers 200 to a graph that can run (an empty one); with no body it
# would be a 400 and measure the refusal instead.
BODIES = {"POST /api/v1/graphs/validate": b'{"nodes":{},"edges":[]}'}


async def _measure(requests: int) -> dict[str, float]:
    os.environ["INVOKE_HOST_ALLOWED_HOSTS"] = "bench.local"
    import invoke_core_events.plugin
    import invoke_sqlite_storage.plugin

    from invoke_host.app import create_app
    from invoke_host.config import HostConfig

    app = create_app(
        HostConfig(root=Path(tempfile.mkdtemp(prefix="invoke-bench-")), processor_enabled=False),
        plugins=[("sqlite_storage", invoke_sqlite_storage.plugin), ("core_events", invoke_core_events.plugin)],
        entry_points=False,
    )
    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(app({"type": "lifespan"}, lifespan_in.get, lifespan_out.put))  # type: ignore[arg-type]
    await lifespan_in.put({"type": "lifespan.startup"})
    started = await lifespan_out.get()
    assert started["type"] == "lifespan.startup.complete", started

    async def call(request: str) -> int:
        method, path = request.split(" ")
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
            "headers": [(b"host", b"bench.local")], "client": ("127.0.0.1", 1), "server": ("bench.local", 80),
        }
        status = 0

        body = BODIES.get(request, b"")

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)  # type: ignore[arg-type]
        return status

    out: dict[str, float] = {}
    for path in PATHS:
        for _ in range(50):  # warm: signature models, statements, caches
            assert await call(path) == 200, path
        # CPU time of this process (the loop and aiosqlite's thread), in batches, keeping the cheapest: on a
        # shared machine wall time mostly measures the neighbours.
        batch = max(1, requests // BATCHES)
        cheapest = float("inf")
        for _ in range(BATCHES):
            start = time.process_time()
            for _ in range(batch):
                await call(path)
            cheapest = min(cheapest, (time.process_time() - start) / batch)
        out[path] = cheapest * 1e6
    await lifespan_in.put({"type": "lifespan.shutdown"})
    await lifespan_out.get()
    await lifespan
    return out


def _run_side(checkout: Path | None, requests: int) -> dict[str, float]:
    env = dict(os.environ)
    if checkout is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, __file__, "--requests", str(requests), "--json"],
        env=env, check=True, capture_output=True, text=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another checkout whose invoke_host is the baseline")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        print(json.dumps(asyncio.run(_measure(args.requests))))
        return
    if args.against is None:
        for path, us in asyncio.run(_measure(args.requests)).items():
            print(f"{path:48} {us:8.1f} us CPU/request")
        return
    ours: dict[str, list[float]] = {p: [] for p in PATHS}
    base: dict[str, list[float]] = {p: [] for p in PATHS}
    sides: list[tuple[dict[str, list[float]], Path | None]] = [(base, args.against), (ours, None)]
    for round_ in range(args.rounds):
        for side, checkout in sides if round_ % 2 == 0 else sides[::-1]:  # ABBA: neither side always goes first
            for path, us in _run_side(checkout, args.requests).items():
                side[path].append(us)
    for path in PATHS:
        b, o = statistics.median(base[path]), statistics.median(ours[path])
        bmin, omin = min(base[path]), min(ours[path])
        print(f"{path:48} median: baseline {b:7.1f} us, this {o:7.1f} us, ratio {o / b:5.3f};  "
              f"cheapest: {bmin:7.1f} vs {omin:7.1f} us, ratio {omin / bmin:5.3f}")


if __name__ == "__main__":
    main()
