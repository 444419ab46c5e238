"""The event bus, plugin events and sinks, and the event models in the OpenAPI document."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, ClassVar

import invoke_sqlite_storage.plugin as sqlite_plugin
from invoke_sdk import hookimpl
from invoke_sdk.events import BaseEvent, EncodedEvent, EventSink, QueueClearedEvent
from invoke_sdk.hookspecs import RegisterEvent, RegisterEventSink
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.events import EventBus
from invoke_host.host import build_host
from invoke_host.openapi_document import openapi_document
from tests.waiting import async_wait_until


class RecordingSink:
    def __init__(self, name: str = "recording", fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.events: list[BaseEvent] = []
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    def deliver(self, event: BaseEvent) -> None:
        if self.fail:
            raise RuntimeError("this sink is broken")
        self.events.append(event)


class ModelInstalledEvent(BaseEvent):
    event_name: ClassVar[str] = "test_model_installed"
    key: str


class StealsACoreName(BaseEvent):
    event_name: ClassVar[str] = "queue_cleared"


class EventsPlugin:
    def __init__(self) -> None:
        self.sink = RecordingSink()

    @hookimpl
    def register_events(self, register: RegisterEvent) -> None:
        register(ModelInstalledEvent)
        register(StealsACoreName)

    @hookimpl
    def register_event_sinks(self, register: RegisterEventSink) -> None:
        register(self.sink)


async def test_a_raising_sink_does_not_stop_the_others() -> None:
    broken, good = RecordingSink("broken", fail=True), RecordingSink("good")
    bus = EventBus([broken, good])
    await bus.start()
    bus.emit(QueueClearedEvent.build("q"))
    bus.emit(QueueClearedEvent.build("r"))
    await bus.stop()
    assert [e.queue_id for e in good.events] == ["q", "r"]  # type: ignore[attr-defined]


async def test_events_emitted_from_worker_threads_arrive_in_order_on_the_loop() -> None:
    sink = RecordingSink()
    seen_threads: set[int] = set()
    original = sink.deliver

    def deliver(event: BaseEvent) -> None:
        seen_threads.add(threading.get_ident())
        original(event)

    sink.deliver = deliver  # type: ignore[method-assign]
    bus = EventBus([sink])
    await bus.start()
    await asyncio.to_thread(lambda: [bus.emit(QueueClearedEvent.build(str(i))) for i in range(50)])
    await async_wait_until(lambda: len(sink.events) >= 50, "the 50 events to reach the sink")
    await bus.stop()
    assert [e.queue_id for e in sink.events] == [str(i) for i in range(50)]  # type: ignore[attr-defined]
    assert seen_threads == {threading.get_ident()}


def test_plugin_events_and_sinks_are_registered_and_core_names_protected(tmp_path: Path) -> None:
    plugin = EventsPlugin()
    host = build_host(HostConfig(root=tmp_path), [("events_plugin", plugin)], entry_points=False)
    assert host.registry.events["test_model_installed"] is ModelInstalledEvent
    assert host.registry.events["queue_cleared"] is QueueClearedEvent
    record = next(r for r in host.registry.plugins if r.name == "events_plugin")
    assert any("queue_cleared" in refused and "belongs to the host" in refused for refused in record.refused)
    assert isinstance(plugin.sink, EventSink)
    assert host.events is not None and host.events.sink("recording") is plugin.sink
    # The union of every event model was built at the freeze.
    event = host.registry.event_adapter.validate_python(ModelInstalledEvent(key="k"))
    assert isinstance(event, ModelInstalledEvent)


def test_every_event_model_is_in_the_openapi_components(tmp_path: Path) -> None:
    plugin = EventsPlugin()
    app = create_app(HostConfig(root=tmp_path), [("events_plugin", plugin), ("sqlite", sqlite_plugin)],
                     entry_points=False)
    schemas: dict[str, Any] = openapi_document(app)["components"]["schemas"]
    mapping = schemas["AnyEventMessage"]["discriminator"]["mapping"]
    for name, cls in app.state.host.registry.events.items():
        assert schemas[f"Event.{name}"]["title"] == f"Event.{name}", cls
        assert mapping[name] == f"#/components/schemas/EventMessage.{name}"
    assert "Event.test_model_installed" in schemas and "Event.invocation_progress" in schemas
    assert "EnqueueBatchBody" in schemas and "Batch" in schemas


def test_the_queue_emits_to_plugin_sinks(tmp_path: Path) -> None:
    plugin = EventsPlugin()
    app = create_app(HostConfig(root=tmp_path, processor_enabled=False),
                     [("events_plugin", plugin), ("sqlite", sqlite_plugin)], entry_points=False)
    with TestClient(app) as client:
        assert plugin.sink.started
        r = client.post("/api/v1/queue/q1/enqueue_batch", json={"batch": {"graph": {"nodes": {}}, "runs": 2}})
        assert r.status_code == 201, r.text
        client.put("/api/v1/queue/q1/clear")
    names = [e.event_name for e in plugin.sink.events]
    assert names == ["batch_enqueued", "queue_cleared"]
    assert not plugin.sink.started


class EncodedSink(RecordingSink):
    """Takes encoded events as they are."""

    def __init__(self) -> None:
        super().__init__("encoded")
        self.encoded: list[EncodedEvent] = []

    def deliver_encoded(self, event: EncodedEvent) -> None:
        self.encoded.append(event)


class Picky(RecordingSink):
    def __init__(self, name: str, wanted: set[str]) -> None:
        super().__init__(name)
        self.wanted = wanted

    def wants(self, event_name: str) -> bool:
        return event_name in self.wanted


async def test_an_encoded_event_reaches_encoded_sinks_as_it_is_and_the_others_typed_once() -> None:
    encoded, plain, picky, broken = EncodedSink(), RecordingSink(), Picky("picky", set()), RecordingSink("b", True)
    bus = EventBus([broken, encoded, plain, picky])
    await bus.start()
    built: list[BaseEvent] = []

    def build() -> BaseEvent:
        built.append(QueueClearedEvent.build("q"))
        return built[-1]

    assert bus.wants_typed("queue_cleared")  # the plain sink cannot say: it takes everything
    event = EncodedEvent("queue_cleared", "queue:q", '{"event":"queue_cleared","data":{}}', build)
    await asyncio.to_thread(bus.emit_encoded, event)
    await async_wait_until(lambda: bool(encoded.encoded), "the encoded event to arrive")
    assert encoded.encoded == [event] and encoded.events == []
    assert plain.events == built and len(built) == 1  # built once, though the broken sink asked first
    assert picky.events == []  # it said it does not want it: never handed the model
    await bus.stop()


async def test_without_a_sink_that_needs_the_model_nothing_asks_for_it() -> None:
    encoded, picky = EncodedSink(), Picky("picky", {"other"})
    bus = EventBus([encoded, picky])
    assert not bus.wants_typed("queue_cleared")  # not started
    await bus.start()
    assert bus.wants("queue_cleared") and not bus.wants_typed("queue_cleared") and bus.wants_typed("other")

    def build() -> BaseEvent:
        raise AssertionError("no sink needed the typed event")

    bus.emit_encoded(EncodedEvent("queue_cleared", None, "{}", build))
    assert len(encoded.encoded) == 1 and picky.events == []
    await bus.stop()
