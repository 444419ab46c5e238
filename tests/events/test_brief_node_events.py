"""Brief node events (``"node_events": "brief"`` at subscribe): what each client gets, over a real server.

A brief client gets every event a full client gets, in the same order; a node's start and completion come in their
brief form (the full message's ``data`` cut to :data:`~invoke_sdk.events.BRIEF_FIELDS`), byte for byte what
:func:`~invoke_sdk.events.brief_message` makes of the full text, whether the host wrote it from parts (runs) or the
sink made it from a typed event (a sink that needs models is listening). Full clients get exactly what they got
before.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import invoke_core_events.plugin as core_events_plugin
import invoke_core_nodes.plugin as core_nodes_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import jsonschema_rs
import pytest
import websockets
from invoke_core_events.websocket_sink import WebSocketSink
from invoke_sdk import hookimpl
from invoke_sdk.events import (
    BRIEF_EVENTS,
    BRIEF_FIELDS,
    BaseEvent,
    BriefEventRunSink,
    EncodedEventRun,
    QueueClearedEvent,
    brief_message,
    encode_message,
)
from invoke_sdk.hookspecs import RegisterEventSink
from litestar import Litestar
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.events import EventBus
from invoke_host.events.bus import WANTED, WANTED_TYPED
from invoke_host.events.runs import RunWriter
from tests.events.test_event_runs import RunSink
from tests.queue.conftest import graph, make_app
from tests.queue.live_server import live_server
from tests.waiting import async_wait_until, wait_until

ITEMS = 40


class TypedNodeEventsSink:
    """A sink that takes typed events only and wants every node event, as a relay to other nodes does: while it
    is started the host emits the node events one by one, typed."""

    name = "typed-node-events"

    def wants(self, event_name: str) -> bool:
        return event_name in BRIEF_EVENTS

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def deliver(self, event: BaseEvent) -> None:
        return None


class TypedNodeEventsPlugin:
    @hookimpl
    def register_event_sinks(self, register: RegisterEventSink) -> None:
        register(TypedNodeEventsSink())


def _app(root: Path, *, typed: bool = False) -> Litestar:
    """The host the tests serve; ``typed``: with a sink that needs the node events' typed models."""
    plugins: list[tuple[str, Any]] = [("core_nodes", core_nodes_plugin), ("sqlite", sqlite_plugin),
                                      ("core_events", core_events_plugin)]
    if typed:
        plugins.append(("typed_node_events", TypedNodeEventsPlugin()))
    return create_app(HostConfig(root=root), plugins, entry_points=False)


def _graph() -> dict[str, Any]:
    return {
        "nodes": {"range": {"type": "range", "start": 0, "stop": ITEMS, "step": 1}, "it": {"type": "iterate"},
                  "add": {"type": "add", "b": 1}},
        "edges": [{"source": {"node_id": "range", "field": "collection"},
                   "destination": {"node_id": "it", "field": "collection"}},
                  {"source": {"node_id": "it", "field": "item"}, "destination": {"node_id": "add", "field": "a"}}],
    }


def _done(text: str) -> bool:
    message = json.loads(text)
    return message["event"] == "queue_item_status_changed" and message["data"]["status"] == "completed"


async def _read(url: str, base: str, forms: list[tuple[bool, str | None]], app: Litestar) -> list[list[str]]:
    """One client per ``(batch, node_events)``, each reading the whole item: each client's messages as texts."""
    subscribed = asyncio.Event()
    count = 0

    async def reader(batch: bool, node_events: str | None) -> list[str]:
        nonlocal count
        async with websockets.connect(url, max_size=None) as ws:
            request: dict[str, Any] = {"subscribe": "queue", "queue_id": "brief", "batch": batch}
            if node_events is not None:
                request["node_events"] = node_events
            await ws.send(json.dumps(request))
            answer = json.loads(await ws.recv())
            assert answer == ([_SUBSCRIBED] if batch else _SUBSCRIBED)
            count += 1
            if count == len(forms):
                subscribed.set()
            got: list[str] = []
            while not (got and _done(got[-1])):
                frame = await asyncio.wait_for(ws.recv(), 60)
                assert isinstance(frame, str)
                # A batching client's frame is an array: each of its messages, as the server wrote it, is one item.
                got.extend(json.dumps(m, separators=(",", ":"), ensure_ascii=False) for m in json.loads(frame)
                           ) if batch else got.append(frame)
            return got

    async def enqueue() -> None:
        await subscribed.wait()
        sink = app.state["host"].events
        forms_wanted = sink.wanted_forms("invocation_started")
        assert forms_wanted[1] == any(f == "brief" for _, f in forms)
        async with httpx.AsyncClient(base_url=base) as http:
            r = await http.post("/api/v1/queue/brief/enqueue_batch", json={"batch": {"graph": _graph()}})
            assert r.status_code == 201, r.text

    *streams, _ = await asyncio.wait_for(asyncio.gather(*(reader(b, f) for b, f in forms), enqueue()), 120)
    return streams


_SUBSCRIBED = {"event": "subscribed", "data": {"room": "queue", "queue_id": "brief"}}


def _check_brief(full: list[str], brief: list[str]) -> None:
    assert len(brief) == len(full)
    for full_text, brief_text in zip(full, brief, strict=True):
        message = json.loads(full_text)
        if message["event"] in BRIEF_EVENTS:
            assert brief_text == brief_message(full_text)
            data = json.loads(brief_text)["data"]
            assert data == {k: v for k, v in message["data"].items() if k in BRIEF_FIELDS}
            assert "invocation" not in data and "result" not in data and "session_id" not in data
        else:
            assert brief_text == full_text  # every other event is the same for every client


@pytest.mark.parametrize("typed", [False, True], ids=["written from parts", "made from typed events"])
def test_brief_clients_get_the_same_stream_with_brief_node_events_and_full_clients_are_unchanged(
        tmp_path: Path, typed: bool) -> None:
    # With a sink that needs each node event's model, the host emits them one by one, typed, and the websocket sink
    # makes the brief form itself.
    app = _app(tmp_path, typed=typed)
    with live_server(app) as base:
        assert app.state["host"].events.wants_typed("invocation_complete") is typed
        forms: list[tuple[bool, str | None]] = [(False, None), (True, "full"), (False, "brief"), (True, "brief")]
        full, full_batch, brief, brief_batch = asyncio.run(
            _read(base.replace("http", "ws") + "/ws", base, forms, app))
    assert full == full_batch
    nodes = [json.loads(m) for m in full if json.loads(m)["event"] in BRIEF_EVENTS]
    assert len(nodes) == 2 * (2 * ITEMS + 1)
    assert all("invocation" in m["data"] for m in nodes)  # full clients: the node, and the output on completion
    adds = sorted(m["data"]["result"]["value"] for m in nodes
                  if m["event"] == "invocation_complete" and m["data"]["invocation_type"] == "add")
    assert adds == list(range(1, ITEMS + 1))
    _check_brief(full, brief)
    _check_brief(full, brief_batch)
    assert sum(map(len, brief)) < 0.7 * sum(map(len, full))


def test_with_only_brief_clients_the_host_writes_only_the_brief_form(tmp_path: Path) -> None:
    app = _app(tmp_path)
    with live_server(app) as base:
        [brief] = asyncio.run(_read(base.replace("http", "ws") + "/ws", base, [(True, "brief")], app))
        bus = app.state["host"].events
        wait_until(lambda: bus.wanted_forms("invocation_complete") == (0, False), "the client to be forgotten")
    nodes = [json.loads(m) for m in brief if json.loads(m)["event"] in BRIEF_EVENTS]
    assert len(nodes) == 2 * (2 * ITEMS + 1)
    assert [m["event"] for m in nodes] == ["invocation_started", "invocation_complete"] * (2 * ITEMS + 1)
    assert all(set(m["data"]) <= BRIEF_FIELDS for m in nodes)
    assert [m["data"]["cached"] for m in nodes if m["event"] == "invocation_complete"] == [False] * (2 * ITEMS + 1)


def test_a_bad_node_events_value_gets_an_error_and_the_socket_lives_on(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client, client.websocket_connect("/ws") as ws:
        for bad in ({"subscribe": "queue", "queue_id": "q", "node_events": "short"},
                    {"subscribe": "queue", "queue_id": "q", "node_events": ["brief"]},
                    {"unsubscribe": "queue", "queue_id": "q", "node_events": "brief"}):
            ws.send_text(json.dumps(bad))
            reply = ws.receive_json()
            assert reply["event"] == "error", bad
            assert '"node_events": "full", "brief" or "progress"' in reply["data"]["message"]
        sink = client.app.state["host"].events.sink(WebSocketSink.name)
        assert isinstance(sink, WebSocketSink)
        assert not sink.wants_brief("invocation_started")  # nothing was subscribed by the bad messages
        ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q", "node_events": "brief"}))
        assert ws.receive_json() == {"event": "subscribed", "data": {"room": "queue", "queue_id": "q"}}
        assert sink.wants_brief("invocation_started") and not sink.wants_full("invocation_started")
        assert sink.wants_full("queue_cleared") and not sink.wants_brief("queue_cleared")
        # Without the key a later subscribe keeps the form; "full" goes back to the full messages.
        ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q2"}))
        assert ws.receive_json()["event"] == "subscribed"
        assert sink.wants_brief("invocation_started")
        ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q", "node_events": "full"}))
        assert ws.receive_json()["event"] == "subscribed"
        assert sink.wants_full("invocation_started") and not sink.wants_brief("invocation_started")


def test_brief_message_keeps_the_order_and_the_text_and_leaves_other_messages_alone() -> None:
    full = ('{"event":"invocation_complete","data":{"timestamp":1.5,"queue_id":"q \\"é\\"","item_id":3,'
            '"batch_id":"b","session_id":"s","invocation_id":"n#0","invocation_source_id":"n","invocation_type":"t",'
            '"invocation":{"id":"n#0","type":"t"},"result":{"value":1,"type":"o"},"cached":true}}')
    assert brief_message(full) == ('{"event":"invocation_complete","data":{"timestamp":1.5,"queue_id":"q \\"é\\"",'
                                   '"item_id":3,"invocation_id":"n#0","invocation_source_id":"n",'
                                   '"invocation_type":"t","cached":true}}')
    other = encode_message(QueueClearedEvent.build("q"))
    assert brief_message(other) is other


class BriefRunSink(RunSink):
    """Takes full and brief runs, and records which was which."""

    def wants(self, event_name: str) -> bool:
        return True

    def wants_full(self, event_name: str) -> bool:
        return True

    def wants_brief(self, event_name: str) -> bool:
        return event_name in BRIEF_EVENTS

    def deliver_brief_run(self, run: EncodedEventRun) -> None:
        self.calls.append(("brief", run.messages()))


def _cleared(n: int) -> bytes:
    return encode_message(QueueClearedEvent.model_validate({"queue_id": "q", "timestamp": float(n)})).encode()


async def test_a_brief_run_goes_only_to_the_sinks_that_take_brief_runs_and_forms_are_asked_apart() -> None:
    plain, brief = RunSink(), BriefRunSink()
    bus = EventBus([plain, brief])
    await bus.start()
    assert isinstance(brief, BriefEventRunSink) and not isinstance(plain, BriefEventRunSink)
    # The plain sink takes everything (no wants): full is wanted; the brief sink adds the brief form.
    assert bus.wanted_forms("invocation_started") == (WANTED, True)
    assert bus.wanted_forms("queue_cleared") == (WANTED, False)
    full_writer, brief_writer = RunWriter(bus, "queue:q"), RunWriter(bus, "queue:q", brief=True)

    def node_thread() -> None:
        full_writer.add(QueueClearedEvent, _cleared(1))
        brief_writer.add(QueueClearedEvent, _cleared(2))

    thread = threading.Thread(target=node_thread)
    thread.start()
    thread.join()
    await async_wait_until(lambda: len(brief.calls) == 2, "both runs at the brief sink")
    assert plain.calls == [("run", [_cleared(1).decode()])]
    assert sorted(brief.calls) == [("brief", [_cleared(2).decode()]), ("run", [_cleared(1).decode()])]
    await bus.stop()
    assert bus.wanted_forms("invocation_started") == (0, False)


async def test_wanted_forms_asks_a_brief_sink_for_each_form() -> None:
    sink = WebSocketSink()
    bus = EventBus([sink])
    await bus.start()
    assert bus.wanted_forms("invocation_started") == (0, False)
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    async def close(code: int, reason: str) -> None:
        return None

    client = sink.connect(send, close)
    client.handle(json.dumps({"subscribe": "queue", "queue_id": "q", "node_events": "brief"}))
    assert bus.wanted_forms("invocation_started") == (0, True)
    assert bus.wanted_forms("queue_cleared") == (WANTED, False)
    other = sink.connect(send, close)
    other.handle(json.dumps({"subscribe": "queue", "queue_id": "q"}))
    assert bus.wanted_forms("invocation_complete") == (WANTED, True)
    assert WANTED_TYPED != WANTED
    await sink.disconnect(other)
    await sink.disconnect(client)
    await bus.stop()


def test_the_document_describes_node_events_and_real_brief_frames_follow_it(tmp_path: Path) -> None:
    app = make_app(tmp_path, processor_enabled=True)
    with TestClient(app) as client:
        doc = client.get("/schema/openapi.json").json()

        def validator(name: str) -> Any:
            schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
            return jsonschema_rs.Draft202012Validator(schema)

        client_message, frame = validator("WsClientMessage"), validator("WsServerFrame")
        subscribe = {"subscribe": "queue", "queue_id": "q1", "batch": True, "node_events": "brief"}
        assert client_message.is_valid(subscribe)
        assert client_message.is_valid({**subscribe, "node_events": "full"})
        assert not client_message.is_valid({**subscribe, "node_events": "short"})
        with client.websocket_connect("/ws") as ws:
            ws.send_text(json.dumps(subscribe))
            frames = [ws.receive_json()]
            assert client.post("/api/v1/queue/q1/enqueue_batch", json={"batch": {"graph": graph()}}).status_code == 201
            while not any(m["event"] == "queue_item_status_changed" and m["data"]["status"] in ("completed", "failed")
                          for m in frames[-1]):
                frames.append(ws.receive_json())
    messages = [m for f in frames for m in f]
    nodes = [m for m in messages if m["event"] in BRIEF_EVENTS]
    assert [m["event"] for m in nodes] == ["invocation_started", "invocation_complete"]
    assert all(set(m["data"]) <= BRIEF_FIELDS for m in nodes)
    for received in frames:
        assert frame.is_valid(received), received
    assert all(frame.is_valid(m) for m in messages)
    complete = nodes[1]
    assert not frame.is_valid({**complete, "data": {**complete["data"], "cached": "no"}})
