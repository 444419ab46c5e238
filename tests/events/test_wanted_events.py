"""Events are built only for sinks that want them: the bus asks, the websocket and log sinks answer."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import invoke_core_events.plugin as core_events_plugin
import invoke_core_nodes.plugin as core_nodes_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import pytest
from invoke_core_events.log_sink import LogSink
from invoke_core_events.websocket_sink import WebSocketSink
from invoke_sdk import hookimpl
from invoke_sdk.events import BaseEvent, EncodedEvent, SelectiveEventSink
from invoke_sdk.hookspecs import RegisterEventSink
from litestar import Litestar
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.events import EventBus
from invoke_host.events.runs import PendingRun
from tests.events.test_event_bus import RecordingSink
from tests.waiting import wait_until

NODE_EVENTS = ("invocation_started", "invocation_progress", "invocation_complete", "invocation_error")


class Choosy(RecordingSink):
    def __init__(self, name: str, wanted: set[str] | None = None, broken: bool = False) -> None:
        super().__init__(name)
        self.wanted = wanted or set()
        self.broken = broken

    def wants(self, event_name: str) -> bool:
        if self.broken:
            raise RuntimeError("cannot tell")
        return event_name in self.wanted


async def test_the_bus_wants_what_any_sink_wants_and_everything_for_a_sink_that_cannot_say() -> None:
    first, second = Choosy("first", {"a"}), Choosy("second", {"b"})
    assert isinstance(first, SelectiveEventSink) and not isinstance(RecordingSink(), SelectiveEventSink)
    bus = EventBus([first, second])
    assert not bus.wants("a")  # not started: nobody listens
    await bus.start()
    assert bus.wants("a") and bus.wants("b") and not bus.wants("c")
    first.wanted.add("c")  # the answer is asked each time, not remembered
    assert bus.wants("c")
    await bus.stop()
    assert not bus.wants("a")

    everything = EventBus([Choosy("none"), RecordingSink("plain")])
    await everything.start()
    assert everything.wants("anything")
    await everything.stop()


async def test_a_sink_whose_wants_raises_gets_the_event(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus([Choosy("broken", broken=True), Choosy("quiet")])
    await bus.start()
    assert bus.wants("x")
    await bus.stop()
    assert "failed to say whether it wants 'x'" in caplog.text


def test_the_log_sink_wants_what_its_level_shows() -> None:
    logger = logging.getLogger("tests.events.wanted")
    sink = LogSink(logger)
    logger.setLevel(logging.INFO)
    try:
        assert not sink.wants("invocation_started") and not sink.wants("invocation_complete")
        assert not sink.wants("model_install_download_progress") and not sink.wants("batch_enqueued")
        assert sink.wants("invocation_error") and sink.wants("queue_item_status_changed")
        logger.setLevel(logging.WARNING)
        assert sink.wants("invocation_error") and not sink.wants("queue_cleared")
        logger.setLevel(logging.DEBUG)
        assert sink.wants("model_install_download_progress") and sink.wants("batch_enqueued")
        # A node's own events, never: thousands per graph (the log says per item what ran instead).
        assert not sink.wants("invocation_started") and not sink.wants("invocation_complete")
        assert not sink.wants("invocation_progress")
    finally:
        logger.setLevel(logging.NOTSET)


async def test_the_websocket_sink_wants_queue_events_only_while_a_client_is_subscribed() -> None:
    sink = WebSocketSink()
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    async def close(code: int, reason: str) -> None:
        return None

    assert not sink.wants("invocation_started") and not sink.wants("model_install_started")
    one = sink.connect(send, close)
    # Connected, not subscribed: it gets events for every client, but no queue's.
    assert not sink.wants("invocation_started") and sink.wants("model_install_started")
    one.handle(json.dumps({"subscribe": "queue", "queue_id": "q"}))
    assert sink.wants("invocation_started") and sink.wants("queue_item_status_changed")
    two = sink.connect(send, close)
    two.handle(json.dumps({"subscribe": "queue", "queue_id": "r"}))
    one.handle(json.dumps({"unsubscribe": "queue", "queue_id": "q"}))
    assert sink.wants("invocation_started")  # two still listens
    await sink.disconnect(two)
    assert not sink.wants("invocation_started") and sink.wants("model_install_started")
    await sink.disconnect(one)
    assert not sink.wants("model_install_started")
    await sink.stop()


def _app(root: Path) -> Litestar:
    return create_app(HostConfig(root=root),
                      [("core_nodes", core_nodes_plugin), ("sqlite_storage", sqlite_plugin),
                       ("core_events", core_events_plugin)], entry_points=False)


CHAIN = {
    "nodes": {"first": {"type": "add", "a": 1, "b": 2}, "second": {"type": "add", "b": 10}},
    "edges": [{"source": {"node_id": "first", "field": "value"}, "destination": {"node_id": "second", "field": "a"}}],
}


def test_node_events_are_built_only_while_a_sink_wants_them(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(_app(tmp_path)) as client:
        bus: EventBus = client.app.state.host.events
        emitted: list[str] = []
        typed_nodes: list[bool] = []
        """For each node event emitted: whether its typed model existed when it reached the bus."""
        emit, emit_encoded, emit_run = bus.emit, bus.emit_encoded, bus.emit_run
        runs: list[PendingRun] = []
        """The runs node events were added to (what no sink needs typed goes to the bus so)."""

        def recording(event: BaseEvent) -> None:
            emitted.append(event.event_name)
            emit(event)

        def recording_encoded(event: EncodedEvent) -> None:
            emitted.append(event.event_name)
            if event.event_name in NODE_EVENTS:
                typed_nodes.append(event.is_built)
            emit_encoded(event)

        def recording_run(run: PendingRun) -> bool:
            runs.append(run)
            return emit_run(run)

        monkeypatch.setattr(bus, "emit", recording)
        monkeypatch.setattr(bus, "emit_run", recording_run)
        monkeypatch.setattr(bus, "emit_encoded", recording_encoded)
        caplog.set_level(logging.INFO, logger="invoke_host.events")

        def run() -> int:
            r = client.post("/api/v1/queue/default/enqueue_batch", json={"batch": {"graph": CHAIN}})
            assert r.status_code == 201, r.text
            item_id: int = r.json()["item_ids"][0]
            wait_until(lambda: client.get(f"/api/v1/queue/default/i/{item_id}").json()["status"] == "completed",
                       "the item to complete")
            return item_id

        # Nobody subscribed and the log at INFO: not one node event is built (the status changes still are).
        run()
        assert "queue_item_status_changed" in emitted
        assert not [n for n in emitted if n in NODE_EVENTS]

        # A subscribed client gets every node event, in order, exactly as before.
        emitted.clear()
        with client.websocket_connect("/ws") as ws:
            ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "default"}))
            assert ws.receive_json()["event"] == "subscribed"
            item_id = run()
            got: list[dict[str, Any]] = []
            while not (got and got[-1]["event"] == "queue_item_status_changed"
                       and got[-1]["data"]["status"] == "completed"):
                got.append(ws.receive_json())
        nodes = [(m["event"], m["data"]["invocation_source_id"]) for m in got if m["event"] in NODE_EVENTS]
        assert nodes == [("invocation_started", "first"), ("invocation_complete", "first"),
                         ("invocation_started", "second"), ("invocation_complete", "second")]
        assert all(m["data"]["item_id"] == item_id for m in got if m["event"] in NODE_EVENTS)
        # Only the websocket sink wanted them: written as messages into runs, no model or per-event object built.
        assert typed_nodes == []
        assert [cls.event_name for run in runs for cls in run.classes] == [
            "invocation_started", "invocation_complete"] * 2
        runs.clear()

        # No client and the log at DEBUG: still not one node event (the log says per item what ran instead).
        emitted.clear()
        caplog.set_level(logging.DEBUG, logger="invoke_host.events")
        caplog.set_level(logging.DEBUG, logger="invoke_host.queue.processor")
        wait_until(lambda: not client.app.state.host.events.sink("websocket").clients, "the client to be gone")
        item_id = run()
        assert "queue_item_status_changed" in emitted
        assert not [n for n in emitted if n in NODE_EVENTS]
        assert "Event invocation_" not in caplog.text
        wait_until(lambda: f"Queue item {item_id} ran, by node type: add 2" in caplog.text, "the item's summary")


class PlainSinkPlugin:
    def __init__(self) -> None:
        self.sink = RecordingSink("plain")

    @hookimpl
    def register_event_sinks(self, register: RegisterEventSink) -> None:
        register(self.sink)


def test_a_sink_that_cannot_say_gets_every_node_event(tmp_path: Path) -> None:
    plugin = PlainSinkPlugin()
    app = create_app(HostConfig(root=tmp_path),
                     [("core_nodes", core_nodes_plugin), ("sqlite_storage", sqlite_plugin),
                      ("core_events", core_events_plugin), ("plain", plugin)], entry_points=False)
    with TestClient(app) as client:
        r = client.post("/api/v1/queue/default/enqueue_batch", json={"batch": {"graph": CHAIN}})
        assert r.status_code == 201, r.text
        wait_until(lambda: any(getattr(e, "status", None) == "completed" for e in plugin.sink.events),
                   "the plain sink to see the item complete")
    names = [e.event_name for e in plugin.sink.events if e.event_name in NODE_EVENTS]
    assert names == ["invocation_started", "invocation_complete"] * 2
