"""The event bus, plugin events and sinks, and the event models in the OpenAPI document."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import invoke_sqlite_storage.plugin as sqlite_plugin
import pytest
from invoke_sdk import hookimpl
from invoke_sdk.events import BaseEvent, EncodedEvent, EncodedEventBatchSink, EventSink, QueueClearedEvent
from invoke_sdk.hookspecs import RegisterEvent, RegisterEventSink
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.events import EventBus
from invoke_host.events.bus import WANTED, WANTED_TYPED
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


class BatchSink(EncodedSink):
    """Takes runs of encoded events in one call, and records every call in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list[str]]] = []

    def deliver(self, event: BaseEvent) -> None:
        self.calls.append(("deliver", [event.event_name]))

    def deliver_encoded(self, event: EncodedEvent) -> None:
        self.calls.append(("one", [event.message]))

    def deliver_encoded_batch(self, events: Sequence[EncodedEvent]) -> None:
        self.calls.append(("batch", [e.message for e in events]))


def _encoded(n: int) -> EncodedEvent:
    return EncodedEvent("queue_cleared", "queue:q", f"m{n}", lambda: QueueClearedEvent.build(str(n)))


async def test_a_burst_from_a_thread_reaches_a_batch_sink_in_runs_split_by_typed_events() -> None:
    batch, typed = BatchSink(), Picky("picky", {"queue_cleared"})
    bus = EventBus([batch, typed])
    await bus.start()
    assert isinstance(batch, EncodedEventBatchSink)

    def burst() -> None:
        for n in range(3):
            bus.emit_encoded(_encoded(n))
        bus.emit(QueueClearedEvent.build("typed"))
        bus.emit_encoded(_encoded(3))

    # The loop is held while the thread emits: the five events reach it in one burst.
    thread = threading.Thread(target=burst)
    thread.start()
    thread.join()
    await async_wait_until(lambda: len(batch.calls) == 3, "the burst to be delivered")
    assert batch.calls == [("batch", ["m0", "m1", "m2"]), ("deliver", ["queue_cleared"]), ("one", ["m3"])]
    # A sink that needs models gets each one, in order, the typed event in its place.
    assert [e.queue_id for e in typed.events] == ["0", "1", "2", "typed", "3"]  # type: ignore[attr-defined]
    await bus.stop()


async def test_a_stream_from_a_thread_wakes_the_loop_once_and_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = BatchSink()
    bus = EventBus([sink])
    await bus.start()
    loop = asyncio.get_running_loop()
    wakeups: list[int] = []
    original = loop.call_soon_threadsafe

    def counted(*args: Any, **kwargs: Any) -> Any:
        wakeups.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    emitted = threading.Event()

    def stream() -> None:
        for n in range(2000):
            bus.emit_encoded(_encoded(n))
        emitted.set()

    def delivered() -> list[str]:
        return [m for _, messages in sink.calls for m in messages]

    thread = threading.Thread(target=stream)
    thread.start()
    await async_wait_until(lambda: len(delivered()) == 2000, "the stream to be delivered")
    thread.join()
    assert delivered() == [f"m{n}" for n in range(2000)]
    # The first event woke the loop; the rest were picked up by its follow-up looks, which end when one finds none
    # (a wake-up per burst was one per few events: the thread gave up the interpreter lock on each wake-up's write).
    assert len(wakeups) < 20
    await async_wait_until(lambda: not bus._flush_scheduled, "the follow-up looks to end")
    before = len(wakeups)
    late = threading.Thread(target=bus.emit_encoded, args=(_encoded(2000),))  # not to_thread: it wakes the loop too
    late.start()
    await async_wait_until(lambda: len(delivered()) == 2001, "an event after the stream")
    late.join()
    assert len(wakeups) == before + 1  # a new stream wakes the loop again
    await bus.stop()


class PickyEncoded(EncodedSink):
    def __init__(self, wanted: set[str]) -> None:
        super().__init__()
        self.wanted = wanted

    def wants(self, event_name: str) -> bool:
        return event_name in self.wanted


async def test_wanted_says_in_one_pass_whether_a_sink_needs_the_model(caplog: pytest.LogCaptureFixture) -> None:
    encoded, picky = PickyEncoded({"queue_cleared", "typed_too"}), Picky("picky", {"typed_too"})
    bus = EventBus([picky, encoded])
    assert bus.wanted("queue_cleared") == 0  # not started
    await bus.start()
    assert bus.wanted("queue_cleared") == WANTED  # only a sink that takes it encoded
    assert bus.wanted("typed_too") == WANTED_TYPED
    assert bus.wanted("nobody") == 0
    encoded.wanted = set()  # read on every question, as the sinks' state changes
    assert bus.wanted("queue_cleared") == 0

    def broken(event_name: str) -> bool:
        raise RuntimeError("cannot say")

    picky.wants = broken  # type: ignore[method-assign]
    await bus.stop()
    await bus.start()  # the sinks' wants are read at start
    assert bus.wanted("queue_cleared") == WANTED_TYPED  # it could not say: it gets the event
    assert "failed to say whether it wants 'queue_cleared'" in caplog.text
    await bus.stop()
