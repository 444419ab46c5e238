"""Runs of encoded events: a node thread's messages added to one open run, sealed on the loop, delivered whole."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from invoke_core_events.websocket_sink import BATCH_MAX, WebSocketSink
from invoke_sdk.encoded_run import EncodedEventRun
from invoke_sdk.events import (
    BaseEvent,
    EncodedEvent,
    EncodedEventRunSink,
    QueueClearedEvent,
    encode_message,
)

from invoke_host.events import EventBus
from invoke_host.events.runs import RUN_MAX, RunWriter
from tests.events.test_event_bus import Picky, RecordingSink
from tests.events.test_shared_frames import Socket, _join
from tests.waiting import async_wait_until


def _message(queue_id: str, n: int) -> bytes:
    typed = QueueClearedEvent.model_validate({"queue_id": queue_id, "timestamp": float(n)})
    return encode_message(typed).encode()


class RunSink(RecordingSink):
    """Takes runs whole; records every call, in order, with the messages it carried."""

    def __init__(self) -> None:
        super().__init__("runs")
        self.calls: list[tuple[str, list[str]]] = []

    def deliver(self, event: BaseEvent) -> None:
        self.calls.append(("deliver", [event.event_name]))

    def deliver_encoded(self, event: EncodedEvent) -> None:
        self.calls.append(("one", [event.message]))

    def deliver_encoded_batch(self, events: Sequence[EncodedEvent]) -> None:
        self.calls.append(("batch", [e.message for e in events]))

    def deliver_encoded_run(self, run: EncodedEventRun) -> None:
        assert json.loads("[" + run.body + "]") == [json.loads(m) for m in run.messages()]
        assert run.size == len(run.body.encode()) and run.count == len(run.messages())
        self.calls.append(("run", run.messages()))

    def messages(self) -> list[str]:
        return [m for kind, ms in self.calls if kind != "deliver" for m in ms]


def test_a_run_joins_its_messages_once_and_gives_them_back_one_by_one() -> None:
    parts = [_message('q "é"', 1), _message("q", 2)]
    run = EncodedEventRun("queue:q", [QueueClearedEvent, QueueClearedEvent], parts)
    assert run.body == ",".join(p.decode() for p in parts) and run.size == len(b",".join(parts)) and run.count == 2
    events = run.events()
    assert [e.message for e in events] == [p.decode() for p in parts] and run.events() is events
    assert [e.typed().queue_id for e in events] == ['q "é"', "q"]  # type: ignore[attr-defined]
    assert {e.room for e in events} == {"queue:q"}
    with pytest.raises(ValueError, match="at least one message"):
        EncodedEventRun("queue:q", [], [])


async def test_a_thread_s_messages_reach_the_loop_as_runs_in_order_with_the_events_between_them() -> None:
    runs, typed = RunSink(), Picky("picky", {"queue_cleared"})
    bus = EventBus([runs, typed])
    await bus.start()
    assert isinstance(runs, EncodedEventRunSink)
    writer = RunWriter(bus, "queue:q")

    def node_thread() -> None:
        for n in range(3):
            writer.add(QueueClearedEvent, _message("q", n))
        bus.emit(QueueClearedEvent.build("typed"))  # a progress or model event from the same node: it closes the run
        for n in range(3, 5):
            writer.add(QueueClearedEvent, _message("q", n))

    # The loop is held while the thread emits: everything reaches it in one look.
    thread = threading.Thread(target=node_thread)
    thread.start()
    thread.join()
    await async_wait_until(lambda: len(runs.calls) == 3, "the runs to be delivered")
    want = [_message("q", n).decode() for n in range(5)]
    assert runs.calls == [("run", want[:3]), ("deliver", ["queue_cleared"]), ("run", want[3:])]
    # A sink without runs that needs models gets each event, in order, the typed event in its place.
    assert [e.timestamp for e in typed.events if e.queue_id == "q"] == [0.0, 1.0, 2.0, 3.0, 4.0]  # type: ignore[attr-defined]
    assert [e.queue_id for e in typed.events][3] == "typed"  # type: ignore[attr-defined]
    await bus.stop()


async def test_a_long_stream_is_cut_into_runs_of_at_most_run_max_and_loses_nothing() -> None:
    sink = RunSink()
    bus = EventBus([sink])
    await bus.start()
    writer = RunWriter(bus, "queue:q")
    count = RUN_MAX * 2 + 7

    def node_thread() -> None:
        for n in range(count):
            writer.add(QueueClearedEvent, _message("q", n))

    thread = threading.Thread(target=node_thread)
    thread.start()
    thread.join()
    await async_wait_until(lambda: len(sink.messages()) == count, "every message")
    assert sink.messages() == [_message("q", n).decode() for n in range(count)]
    assert all(kind == "run" and len(ms) <= RUN_MAX for kind, ms in sink.calls)
    await bus.stop()


async def test_messages_added_while_the_loop_streams_join_the_open_run_or_the_next() -> None:
    sink = RunSink()
    bus = EventBus([sink])
    await bus.start()
    writer = RunWriter(bus, "queue:q")
    count = 3000

    def node_thread() -> None:
        for n in range(count):
            writer.add(QueueClearedEvent, _message("q", n))
            if n % 300 == 0:
                threading.Event().wait(0.002)  # let the loop seal runs while the thread still adds

    thread = threading.Thread(target=node_thread)
    thread.start()
    await asyncio.to_thread(thread.join)
    await async_wait_until(lambda: len(sink.messages()) == count, "every message")
    assert sink.messages() == [_message("q", n).decode() for n in range(count)]
    await bus.stop()


async def test_a_stopped_bus_drops_runs_and_the_writer_keeps_nothing() -> None:
    sink = RunSink()
    bus = EventBus([sink])
    writer = RunWriter(bus, "queue:q")
    for n in range(5):
        writer.add(QueueClearedEvent, _message("q", n))  # never started: nobody is listening
    assert writer.open is None and sink.calls == []
    await bus.start()
    writer.add(QueueClearedEvent, _message("q", 9))  # on the loop: delivered at once
    assert sink.calls == [("run", [_message("q", 9).decode()])]
    await bus.stop()


async def test_websocket_clients_get_a_run_exactly_as_its_events_one_by_one() -> None:
    sink = WebSocketSink(buffer=100_000)
    _, plain = _join(sink, ["q"], batch=False)
    _, batched = _join(sink, ["q"], batch=True)
    _, elsewhere = _join(sink, ["r"], batch=True)
    sockets = [plain, batched, elsewhere]
    await async_wait_until(lambda: all(s.frames for s in sockets), "the subscription answers")
    for s in sockets:
        s.frames.clear()
    small = [_message("q", n) for n in range(3)]
    large = [_message("q", n) for n in range(3, 3 + BATCH_MAX + 5)]  # more than one frame holds
    sink.deliver_encoded_run(EncodedEventRun("queue:q", [QueueClearedEvent] * len(small), small))
    sink.deliver_encoded_run(EncodedEventRun("queue:q", [QueueClearedEvent] * len(large), large))
    want = [json.loads(m) for m in small + large]

    def seen(socket: Socket) -> list[Any]:
        return socket.messages()

    await async_wait_until(lambda: len(seen(plain)) == len(want) and len(seen(batched)) == len(want),
                           "every message at both clients")
    assert seen(plain) == want and seen(batched) == want and elsewhere.frames == []
    assert plain.frames[:3] == [m.decode() for m in small]  # one message per frame, as it asked
    assert all(f.startswith("[") and len(json.loads(f)) <= BATCH_MAX for f in batched.frames)
    assert all(client.buffered_bytes == 0 for client in sink.clients)
    await sink.stop()


async def test_a_lagging_batching_client_gets_its_waiting_frames_merged_into_valid_arrays() -> None:
    sink = WebSocketSink(buffer=100_000)
    gate = asyncio.Event()
    frames: list[str] = []

    async def slow_send(text: str) -> None:
        await gate.wait()
        frames.append(text)

    async def close(code: int, reason: str) -> None:
        return None

    client = sink.connect(slow_send, close)
    client.handle(json.dumps({"subscribe": "queue", "queue_id": "q", "batch": True}))
    sent = 0
    for n in range(6):  # one frame per interval while the client is stuck on its first
        parts = [_message("q", sent + i) for i in range(n + 1)]
        sink.deliver_encoded_run(EncodedEventRun("queue:q", [QueueClearedEvent] * len(parts), parts))
        sent += len(parts)
        await asyncio.sleep(0.03)
    gate.set()
    await async_wait_until(lambda: sum(len(json.loads(f)) for f in frames) == sent + 1, "every message")
    got = [m for f in frames for m in json.loads(f)]
    assert got[0]["event"] == "subscribed"
    assert [m["data"]["timestamp"] for m in got[1:]] == [float(n) for n in range(sent)]
    assert len(frames) < 7  # what waited went out merged
    await sink.stop()
