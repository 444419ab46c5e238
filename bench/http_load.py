"""A small HTTP/1.1 load generator: keep-alive GETs from a child process, counted over a fixed time.

Python HTTP clients (httpx, requests) spend a millisecond or more per request, which would hide the
server's own cost; this one writes the request bytes and reads ``Content-Length`` bytes back on raw
asyncio streams (uvloop when installed), so one process drives several thousand requests a second.
It runs in a child process so that its work does not share the server's interpreter lock.

    from http_load import requests_per_second
    rate = requests_per_second("http://127.0.0.1:8000", ["/api/v1/images/?limit=50"], seconds=3)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from typing import Any
from urllib.parse import urlsplit

__all__ = ["load", "requests_per_second"]


async def _connection(host: str, port: int, requests: list[bytes], stop_at: float, warm_until: float,
                      counts: list[int], offset: int, step: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            writer.write(requests[i % len(requests)])
            # The connections take turns along the list, so each path is asked for once per pass over it.
            i += step
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            if status != 200:
                raise RuntimeError(f"the server answered {status}: {head[:200]!r}")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            else:
                raise RuntimeError(f"a response without Content-Length: {head[:200]!r}")
            await reader.readexactly(length)
            counts[1] += 1
            if now >= warm_until:
                counts[0] += 1
    finally:
        writer.close()


def _drive(url: str, paths: list[str], seconds: float, connections: int, warm_up: float, result: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode() for p in paths]

    async def main() -> tuple[int, int]:
        counts = [0, 0]  # counted (after the warm-up), all
        start = time.perf_counter()
        await asyncio.gather(*(
            _connection(host, port, requests, start + warm_up + seconds, start + warm_up, counts, n, connections)
            for n in range(connections)
        ))
        return counts[0], counts[1]

    try:
        result.put(("ok", asyncio.run(main())))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
        result.put(("error", f"{type(exc).__name__}: {exc}"))


def requests_per_second(url: str, paths: list[str], *, seconds: float = 3.0, connections: int = 8,
                        warm_up: float = 0.5) -> float:
    """Completed requests/s over ``seconds`` after ``warm_up`` (see :func:`load`)."""
    counted, _ = load(url, paths, seconds=seconds, connections=connections, warm_up=warm_up)
    return counted / seconds


def load(url: str, paths: list[str], *, seconds: float = 3.0, connections: int = 8,
         warm_up: float = 0.5) -> tuple[int, int]:
    """GET ``paths`` in turn on ``connections`` keep-alive connections for ``seconds``; completed requests/s.

    The connections share one pass over ``paths`` (connection ``n`` asks for paths ``n``, ``n + connections`` ...),
    so a list longer than the requests made asks for every path at most once.

    Returns ``(counted, all)``: the requests completed after the first ``warm_up`` seconds, and every request
    completed (what a server's CPU time over the whole call is divided by). Every answer must be 200.
    """
    ctx = multiprocessing.get_context("spawn")
    result = ctx.Queue()
    child = ctx.Process(target=_drive, args=(url, paths, seconds, connections, warm_up, result), daemon=True)
    child.start()
    status, value = result.get(timeout=warm_up + seconds + 60)
    child.join(30)
    if status != "ok":
        raise RuntimeError(f"the load generator failed: {value}")
    counted, made = value
    return int(counted), int(made)
