"""Server CPU per websocket message under uvicorn's websockets protocols: 40,000 sends of one node event's JSON.

A bare ASGI app (no Litestar) sends the messages as fast as the socket takes them to a ``websockets`` client in a
child process; the server thread's CPU for the sends, per message, three rounds per protocol:

    .venv/bin/python bench/ws_send.py websockets websockets-sansio
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import threading
import time
from typing import Any

import uvicorn

N = 40_000
MESSAGE = (
    '{"event":"invocation_complete","data":{"timestamp":1796164384.186149,"queue_id":"bench","item_id":1,'
    '"batch_id":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","session_id":"ssssssssssssssssssssssssssssssss",'
    '"invocation_id":"add-123-abc","invocation_source_id":"add","invocation_type":"add","invocation":{"id":'
    '"add-123-abc","is_intermediate":false,"use_cache":true,"b":1,"type":"add"},"result":{"value":4,"type":'
    '"integer_output"},"cached":false}}'
)
_cpu: list[float] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()
    await send({"type": "websocket.accept"})
    await receive()  # the client is ready
    cpu = time.thread_time()
    for _ in range(N):
        await send({"type": "websocket.send", "text": MESSAGE})
    _cpu.append(time.thread_time() - cpu)
    await send({"type": "websocket.send", "text": "end"})
    await receive()


def _client(url: str, done: Any) -> None:
    import websockets

    async def main() -> None:
        async with websockets.connect(url, max_size=None, ping_interval=None) as ws:
            await ws.send("go")
            async for message in ws:
                if message == "end":
                    break
        done.put(1)

    asyncio.run(main())


def measure(protocol: str) -> list[float]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws=protocol,
                            ws_per_message_deflate=False, ws_ping_interval=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    done = ctx.Queue()
    _cpu.clear()
    for _ in range(3):
        child = ctx.Process(target=_client, args=(f"ws://127.0.0.1:{port}/", done))
        child.start()
        done.get(timeout=300)
        child.join()
    server.should_exit = True
    thread.join(30)
    return [c / N for c in _cpu]


def main() -> None:
    for protocol in sys.argv[1:] or ["websockets", "websockets-sansio"]:
        rounds = ", ".join(f"{c * 1e6:.2f}" for c in measure(protocol))
        print(f"{protocol}: {rounds} us of server CPU per message", flush=True)


if __name__ == "__main__":
    main()
