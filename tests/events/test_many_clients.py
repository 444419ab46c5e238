"""Many websocket clients on one running item, over a real server with the protocol ``invoke-host serve`` runs.

Every client that stays gets every event of the item, in order, the same messages as every other (a batching
client as arrays); one that hangs up mid-run is forgotten and leaves the others' streams whole.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import invoke_core_events.plugin as core_events_plugin
import invoke_core_nodes.plugin as core_nodes_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import websockets
from invoke_core_events.websocket_sink import WebSocketSink
from litestar import Litestar

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.serving import uvicorn_config
from tests.queue.live_server import live_server
from tests.waiting import wait_until

ITEMS = 150


def _app(root: Path) -> Litestar:
    return create_app(HostConfig(root=root), [("core_nodes", core_nodes_plugin), ("sqlite", sqlite_plugin),
                                              ("core_events", core_events_plugin)], entry_points=False)


def _graph() -> dict[str, Any]:
    return {
        "nodes": {"range": {"type": "range", "start": 0, "stop": ITEMS, "step": 1}, "it": {"type": "iterate"},
                  "add": {"type": "add", "b": 1}},
        "edges": [{"source": {"node_id": "range", "field": "collection"},
                   "destination": {"node_id": "it", "field": "collection"}},
                  {"source": {"node_id": "it", "field": "item"}, "destination": {"node_id": "add", "field": "a"}}],
    }


def _done(message: dict[str, Any]) -> bool:
    return message["event"] == "queue_item_status_changed" and message["data"]["status"] == "completed"


async def _clients(url: str, base: str) -> tuple[list[list[dict[str, Any]]], int]:
    """Five plain and three batching clients read the whole item; one more plain one hangs up after 10 messages."""
    ready = asyncio.Event()
    subscribed = 0
    quitter_got = 0

    async def subscribe(ws: Any, batch: bool) -> None:
        nonlocal subscribed
        await ws.send(json.dumps({"subscribe": "queue", "queue_id": "many", "batch": batch}))
        answer = json.loads(await ws.recv())
        if batch:
            [answer] = answer  # its own answers come as arrays too
        assert answer == {"event": "subscribed", "data": {"room": "queue", "queue_id": "many"}}
        subscribed += 1
        if subscribed == 9:
            ready.set()

    async def reader(batch: bool) -> list[dict[str, Any]]:
        async with websockets.connect(url, max_size=None) as ws:
            await subscribe(ws, batch)
            got: list[dict[str, Any]] = []
            while not (got and _done(got[-1])):
                frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
                assert isinstance(frame, list) == batch  # one message per frame unless it asked for arrays
                got.extend(frame if batch else [frame])
            return got

    async def quitter() -> None:
        nonlocal quitter_got
        ws = await websockets.connect(url, max_size=None)
        await subscribe(ws, False)
        while quitter_got < 10:
            await asyncio.wait_for(ws.recv(), 60)
            quitter_got += 1
        ws.transport.abort()  # gone without a close frame, as a killed browser tab

    async def enqueue() -> None:
        await ready.wait()
        async with httpx.AsyncClient(base_url=base) as http:
            r = await http.post("/api/v1/queue/many/enqueue_batch", json={"batch": {"graph": _graph()}})
            assert r.status_code == 201, r.text

    results = await asyncio.wait_for(asyncio.gather(
        *(reader(False) for _ in range(5)), *(reader(True) for _ in range(3)), quitter(), enqueue()), 120)
    return [r for r in results if r is not None], quitter_got


def test_every_client_that_stays_gets_the_whole_stream_in_order(tmp_path: Path) -> None:
    app = _app(tmp_path)
    # The test server speaks the protocol `invoke-host serve` does.
    assert uvicorn_config(app, app.state["host"].config).ws == "websockets-sansio"
    with live_server(app) as base:
        streams, quitter_got = asyncio.run(_clients(base.replace("http", "ws") + "/ws", base))
        sink = app.state["host"].events.sink(WebSocketSink.name)
        assert isinstance(sink, WebSocketSink)
        wait_until(lambda: not sink.clients, "every client to be forgotten")
    assert quitter_got == 10
    assert len(streams) == 8
    first = streams[0]
    assert all(stream == first for stream in streams)  # plain and batching alike: the same messages, in order
    nodes = [m for m in first if m["event"].startswith("invocation_")]
    assert len(nodes) == 2 * (2 * ITEMS + 1)  # started and complete for range, iterate x N, add x N
    assert [m["event"] for m in nodes] == ["invocation_started", "invocation_complete"] * (2 * ITEMS + 1)
    adds = sorted(m["data"]["result"]["value"] for m in nodes
                  if m["event"] == "invocation_complete" and m["data"]["invocation_type"] == "add")
    assert adds == list(range(1, ITEMS + 1))
    assert first[0]["event"] == "batch_enqueued" and _done(first[-1])
