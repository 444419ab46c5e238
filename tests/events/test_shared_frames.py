"""Batching websocket clients of the same rooms share frames: each frame is built once, for all of them."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from invoke_core_events.websocket_sink import BATCH_MAX, CLOSE_TOO_SLOW, WebSocketClient, WebSocketSink
from invoke_sdk.events import BaseEvent, EncodedEvent, QueueClearedEvent, encode_message

from tests.waiting import async_wait_until


class Socket:
    """What a client's socket was sent, frame by frame (the very objects handed to it)."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.closed: list[tuple[int, str]] = []

    async def send(self, text: str) -> None:
        self.frames.append(text)

    async def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))

    def messages(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for frame in self.frames:
            decoded = json.loads(frame)
            out.extend(decoded if isinstance(decoded, list) else [decoded])
        return out


def _join(sink: WebSocketSink, queue_ids: list[str], *, batch: bool) -> tuple[WebSocketClient, Socket]:
    socket = Socket()
    client = sink.connect(socket.send, socket.close)
    for queue_id in queue_ids:
        client.handle(json.dumps({"subscribe": "queue", "queue_id": queue_id, "batch": batch}))
    return client, socket


class Everyone(BaseEvent):
    """An event with no room: it goes to every client."""

    event_name: ClassVar[str] = "test_everyone"
    n: int


def _cleared(queue_id: str, n: int) -> BaseEvent:
    return QueueClearedEvent.model_validate({"queue_id": queue_id, "timestamp": float(n)})


async def test_batching_clients_of_one_queue_are_sent_the_same_frame_objects() -> None:
    sink = WebSocketSink(buffer=100_000)
    sockets = [_join(sink, ["q"], batch=True)[1] for _ in range(3)]
    await async_wait_until(lambda: all(s.frames for s in sockets), "the subscription answers")
    for s in sockets:
        s.frames.clear()
    count = 2 * BATCH_MAX + 500
    for n in range(count):
        sink.deliver(_cleared("q", n))
    await async_wait_until(lambda: all(len(s.messages()) == count for s in sockets), "every event at every client")
    first = sockets[0].frames
    for other in sockets[1:]:
        assert len(other.frames) == len(first)
        assert all(a is b for a, b in zip(first, other.frames, strict=True))  # built once, handed to all
    assert all(len(json.loads(f)) <= BATCH_MAX for f in first) and len(first) >= 3
    assert [m["data"]["timestamp"] for m in sockets[1].messages()] == [float(n) for n in range(count)]
    await sink.stop()


async def test_rooms_framing_and_late_subscribers_each_get_exactly_their_events() -> None:
    sink = WebSocketSink()
    _, plain = _join(sink, ["q"], batch=False)
    _, batched = _join(sink, ["q"], batch=True)
    _, both = _join(sink, ["q", "r"], batch=True)
    _, elsewhere = _join(sink, ["r"], batch=True)
    sink.deliver(_cleared("q", 1))
    sink.deliver(_cleared("r", 2))
    sink.deliver(Everyone(n=3))
    late_client, late = _join(sink, ["q"], batch=True)  # what was emitted before it subscribed is not its
    sink.deliver(_cleared("q", 4))

    def seen(socket: Socket) -> list[Any]:
        data = [m["data"] for m in socket.messages() if m["event"] != "subscribed"]
        return [d["n"] if "n" in d else d["timestamp"] for d in data]

    want = {id(plain): [1.0, 3, 4.0], id(batched): [1.0, 3, 4.0], id(both): [1.0, 2.0, 3, 4.0],
            id(elsewhere): [2.0, 3], id(late): [4.0]}
    sockets = [plain, batched, both, elsewhere, late]
    await async_wait_until(lambda: all(len(seen(s)) == len(want[id(s)]) for s in sockets), "every client's events")
    for socket in sockets:
        assert seen(socket) == want[id(socket)]
    assert all(not f.startswith("[") for f in plain.frames)  # one message per frame, as it asked
    assert all(f.startswith("[") for f in late.frames)
    assert late_client.closed_reason is None
    await sink.stop()


async def test_a_batching_client_that_falls_behind_is_closed_counting_messages_not_frames() -> None:
    sink = WebSocketSink(buffer=50)
    stuck = Socket()

    async def never(text: str) -> None:
        await asyncio.Event().wait()  # a client that stopped reading

    slow = sink.connect(never, stuck.close)
    slow.handle(json.dumps({"subscribe": "queue", "queue_id": "q", "batch": True}))
    _, fast = _join(sink, ["q"], batch=True)
    for n in range(120):
        sink.deliver(_cleared("q", n))
        if n % 30 == 29:
            await async_wait_until(lambda m=n + 2: len(fast.messages()) >= m, "the fast client to keep up")
    await async_wait_until(lambda: slow.closed_reason is not None, "the slow client to be closed")
    assert "fell 50 events behind" in (slow.closed_reason or "")
    await async_wait_until(lambda: stuck.closed == [(CLOSE_TOO_SLOW, slow.closed_reason)], "the close frame")
    assert [m["data"]["timestamp"] for m in fast.messages()[1:]] == [float(n) for n in range(120)]
    await sink.stop()


def _encoded(queue_id: str | None, n: int) -> EncodedEvent:
    message = json.dumps({"event": "queue_cleared", "data": {"queue_id": queue_id, "timestamp": float(n)}},
                         separators=(",", ":"))
    return EncodedEvent.written(QueueClearedEvent, None if queue_id is None else f"queue:{queue_id}", message)


async def test_a_burst_of_encoded_events_reaches_each_client_in_order_by_its_rooms() -> None:
    sink = WebSocketSink()
    _, plain = _join(sink, ["q"], batch=False)
    _, batched = _join(sink, ["q"], batch=True)
    _, both = _join(sink, ["q", "r"], batch=True)
    _, elsewhere = _join(sink, ["r"], batch=False)
    sockets = [plain, batched, both, elsewhere]
    await async_wait_until(lambda: all(s.frames for s in sockets), "the subscription answers")
    for s in sockets:
        s.frames.clear()
    # Runs of one room, then another, then back, a room nobody watches, and an event for every client.
    burst = [_encoded("q", 1), _encoded("q", 2), _encoded("r", 3), _encoded("q", 4), _encoded("nobody", 5),
             _encoded(None, 6)]
    sink.deliver_encoded_batch(burst)
    want = {id(plain): [1.0, 2.0, 4.0, 6.0], id(batched): [1.0, 2.0, 4.0, 6.0], id(both): [1.0, 2.0, 3.0, 4.0, 6.0],
            id(elsewhere): [3.0, 6.0]}

    def seen(socket: Socket) -> list[float]:
        return [m["data"]["timestamp"] for m in socket.messages()]

    await async_wait_until(lambda: all(len(seen(s)) == len(want[id(s)]) for s in sockets), "every client's events")
    for socket in sockets:
        assert seen(socket) == want[id(socket)]
    assert plain.frames == [burst[0].message, burst[1].message, burst[3].message, burst[5].message]  # one per frame
    # A batching client: one frame with all it gets, in order, built once for the clients of its rooms.
    assert batched.frames == ["[" + ",".join(burst[i].message for i in (0, 1, 3, 5)) + "]"]
    assert all(client.buffered_bytes == 0 for client in sink.clients)
    await sink.stop()


async def test_an_encoded_event_read_back_is_the_typed_event_it_was_written_from() -> None:
    typed = QueueClearedEvent.model_validate({"queue_id": 'q "é"', "timestamp": 0.1 + 0.2})
    event = EncodedEvent.written(QueueClearedEvent, typed.room(), encode_message(typed))
    assert not event.is_built
    assert event.typed() == typed and event.typed() is event.typed() and event.is_built
