"""The websocket sink: fans events out to connected clients by the rooms they subscribed to.

Each client has a buffer bounded in messages and in bytes, and its own sender task, so a slow client
never slows the emitter (the processor) or the other clients. A client whose buffer fills up is
disconnected with a reason; it should reconnect and reload the state it shows. A client that stopped
reading cannot take even the close frame: after ``close_timeout`` seconds it is dropped without one.
Messages from a client are capped in size, and errors never echo what it sent. On disconnect every
byte a client held is released at once (its buffer, its rooms, its socket callbacks), not when a garbage
collection gets round to it. The Litestar handler that owns the socket is
:mod:`invoke_core_events.socket_route`; this module knows nothing of Litestar.

A client that subscribes with ``"node_events": "brief"`` gets each node's start and completion in its brief form
(:mod:`invoke_sdk.brief_message`: no node, no output, no batch or session id), about a third of the bytes of a full
one; the clients of each form are kept apart (:class:`_Targets`), and the host writes each form only while a client
of that form is subscribed.

A client that subscribes with ``"node_events": "progress"`` gets no node start or completion at all: per queue item,
one ``invocation_progress_summary`` per delivery of the host's bus, counting them (:mod:`invoke_sdk.progress_summary`;
the host counts and writes them, :meth:`WebSocketSink.deliver_progress_run`). A node event that reaches the sink typed
(relayed from another node, which counted nothing here) becomes a summary of that one node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from invoke_sdk.events import (
    BRIEF_EVENTS,
    CORE_EVENTS,
    NODE_EVENT_FORMS,
    BaseEvent,
    EncodedEvent,
    EncodedEventRun,
    QueueEventBase,
    brief_message,
    encode_message,
    progress_summary_message,
)

__all__ = [
    "BATCH_INTERVAL",
    "BATCH_MAX",
    "CLOSE_GOING_AWAY",
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_TOO_SLOW",
    "WebSocketClient",
    "WebSocketSink",
]

logger = logging.getLogger("invoke_host.events.websocket")

CLOSE_TOO_SLOW = 4008
"""Close code for a client that fell too far behind."""
CLOSE_GOING_AWAY = 1001
"""Close code when the server stops."""
CLOSE_MESSAGE_TOO_BIG = 1009
"""Close code for a client message over the size limit (the standard 'message too big')."""

ROOMS = ("queue",)
"""Rooms a client may subscribe to; each is qualified by an id (``queue_id``)."""

BATCH_MAX = 1000
"""The most messages in one frame of a client that subscribed with ``"batch": true``."""
BATCH_INTERVAL = 0.02
"""Seconds between two frames of a batching client: under load a frame carries what came in meanwhile."""
_FRAMES_PER_TURN = 256
_PREVIEW = 80
"""Characters of a bad client message quoted back in the error: enough to recognise it, never all of it."""

# Events that go only to clients subscribed to their queue (every other event goes to every client).
_QUEUE_EVENTS = frozenset(cls.event_name for cls in CORE_EVENTS if issubclass(cls, QueueEventBase))

Send = Callable[[str], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]


def _message(event: str, data: Any) -> str:
    return json.dumps({"event": event, "data": data}, separators=(",", ":"))


def _size(text: str) -> int:
    """UTF-8 bytes of ``text``; without encoding it when it is ASCII (every JSON we build with ensure_ascii)."""
    return len(text) if text.isascii() else len(text.encode())


def _preview(raw: str) -> str:
    return raw if len(raw) <= _PREVIEW else raw[:_PREVIEW] + f"... ({_size(raw)} bytes)"


_Waiting = tuple[str, int, int, str | None]
"""What a client's buffer holds: ``(text, bytes, messages, body)``; ``body`` is a shared frame's contents (the text
without its brackets, kept beside it so that merging frames copies each once), None for a single message."""


def _merged(buffer: deque[_Waiting]) -> tuple[str, int, int]:
    """Everything waiting, up to :data:`BATCH_MAX` messages, as one array frame (a client that fell behind,
    or its own answers next to a shared frame): ``(frame, bytes, messages)``."""
    parts: list[str] = []
    size = count = 0
    while buffer and (not parts or count + buffer[0][2] <= BATCH_MAX):
        text, n, messages, body = buffer.popleft()
        parts.append(text if body is None else body)
        size += n
        count += messages
    return "[" + ",".join(parts) + "]", size, count


async def _sent_nowhere(message: str) -> None:
    return None


async def _closed_nowhere(code: int, reason: str) -> None:
    return None


class WebSocketClient:
    """One connected client: its rooms, its bounded buffer and the task that drains it.

    The buffer is a plain deque of ``(text, bytes, messages, body)`` (see :data:`_Waiting`) and the sender wakes
    through an event: ``offer`` is an append (called once per event per client, on the loop), and each wake-up of the
    sender sends everything that is waiting, not one message per loop turn. A client that batches gets its
    queue's events as frames the sink built once for every such client (``offer_frame``); its own answers
    (subscribed, errors) go out as a frame of their own.
    """

    def __init__(
        self,
        send: Send,
        close: Close,
        limit: int,
        *,
        limit_bytes: int = 8 * 1024 * 1024,
        max_message_bytes: int = 64 * 1024,
        close_timeout: float = 5.0,
        on_rooms_changed: Callable[[], None] | None = None,
    ) -> None:
        self.rooms: set[str] = set()
        self._on_rooms_changed = on_rooms_changed
        self.batch = False
        """Whether each frame carries a JSON array of every message waiting (opt-in at subscribe)."""
        self.node_events = "full"
        """How node starts and completions come (``"node_events"`` at subscribe): ``full``, ``brief`` (their brief
        form) or ``progress`` (per-item summaries instead)."""
        self.limit = limit
        self.limit_bytes = limit_bytes
        self.max_message_bytes = max_message_bytes
        self.close_timeout = close_timeout
        self.closed_reason: str | None = None
        self._send = send
        self._close = close
        self._buffer: deque[_Waiting] = deque()
        self._buffered = 0
        self._queued = 0
        """Messages waiting (a shared frame counts its messages), held to ``limit``."""
        self._in_flight = 0
        self._sending = False
        self._send_aborted = False
        self._close_request: tuple[int, str] | None = None
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self._drain())

    @property
    def buffered_bytes(self) -> int:
        """Bytes this client holds: messages waiting, and the frame being handed to its socket."""
        return self._buffered + self._in_flight

    def offer(self, message: str, size: int | None = None) -> None:
        """Queue a message (of ``size`` UTF-8 bytes); a client too far behind is disconnected instead."""
        self._queue(message, _size(message) if size is None else size, 1, None)

    def offer_frame(self, frame: str, size: int, messages: int, body: str | None = None) -> None:
        """Queue a frame already built for every batching client of a set of rooms: a JSON array of messages
        (``body``: the same without its brackets, when the sink has it)."""
        self._queue(frame, size, messages, frame[1:-1] if body is None else body)

    def _queue(self, text: str, size: int, messages: int, body: str | None) -> None:
        if self.closed_reason is not None:
            return
        if self._queued + messages > self.limit and self._queued:
            self.request_close(
                CLOSE_TOO_SLOW,
                f"too slow: fell {self.limit} events behind; reconnect and reload the queue state",
            )
            return
        # One message always fits an empty buffer, so a single large event cannot lock every client out.
        if self.buffered_bytes and self.buffered_bytes + size > self.limit_bytes:
            self.request_close(
                CLOSE_TOO_SLOW,
                f"too slow: over {self.limit_bytes} bytes behind "
                f"(INVOKE_HOST_WS_CLIENT_BUFFER_BYTES={self.limit_bytes}); reconnect and reload",
            )
            return
        self._buffer.append((text, size, messages, body))
        self._buffered += size
        self._queued += messages
        self._wake.set()

    def request_close(self, code: int, reason: str) -> None:
        """Drop what is buffered and close the socket with ``reason`` as soon as the sender gets to it.

        A sender stuck handing a frame to a socket that takes nothing (the client stopped reading) is
        interrupted: the frame is dropped and the close is tried, for ``close_timeout`` seconds.
        """
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        if code != CLOSE_GOING_AWAY:
            logger.info("Closing a websocket client (code %d): %s", code, reason)
        self._buffer.clear()
        self._buffered = 0
        self._queued = 0
        self._close_request = (code, reason)
        self._wake.set()
        if self._sending and not self.task.done():
            self._send_aborted = True
            self.task.cancel()

    def release(self) -> None:
        """Let go of everything this client holds (called once its socket is gone and its sender ended)."""
        self.closed_reason = self.closed_reason or "disconnected"
        self._buffer.clear()
        self._buffered = 0
        self._queued = 0
        self._in_flight = 0
        self.rooms.clear()
        if self._on_rooms_changed is not None:
            self._on_rooms_changed()
        # The callbacks hold the socket, its scope and the app: the client must not keep them reachable.
        self._send = _sent_nowhere
        self._close = _closed_nowhere
        self._on_rooms_changed = None

    def handle(self, raw: Any) -> None:
        """Act on one message from the client (subscribe / unsubscribe) and queue the answer."""
        if self.closed_reason is not None:
            return
        size = len(raw) if isinstance(raw, bytes) else _size(raw) if isinstance(raw, str) else 0
        if size > self.max_message_bytes:
            self.request_close(
                CLOSE_MESSAGE_TOO_BIG,
                f"a message of {size} bytes is over ws_max_message_bytes "
                f"(INVOKE_HOST_WS_MAX_MESSAGE_BYTES={self.max_message_bytes})",
            )
            return
        try:
            request = json.loads(raw)
        except (TypeError, ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
            self.offer(_message("error", {"message": "messages must be JSON objects"}))
            return
        if not isinstance(request, dict):
            self.offer(_message("error", {"message": "messages must be JSON objects"}))
            return
        action = "subscribe" if "subscribe" in request else "unsubscribe" if "unsubscribe" in request else None
        room = request.get(action) if action else None
        queue_id = request.get("queue_id")
        batch = request.get("batch")
        node_events = request.get("node_events")
        if action is None or room not in ROOMS or not isinstance(queue_id, str) or not queue_id or (
                batch is not None and (action != "subscribe" or not isinstance(batch, bool))) or (
                node_events is not None and (action != "subscribe" or node_events not in NODE_EVENT_FORMS)):
            self.offer(
                _message(
                    "error",
                    {
                        "message": 'expected {"subscribe": "queue", "queue_id": "<id>"} (optionally with '
                        '"batch": true or false, and "node_events": "full", "brief" or "progress") or '
                        '{"unsubscribe": "queue", "queue_id": "<id>"}',
                        "received": _preview(raw if isinstance(raw, str) else raw.decode(errors="replace")),
                    },
                )
            )
            return
        key = f"{room}:{queue_id}"
        if action == "subscribe":
            self.rooms.add(key)
            if batch is not None:
                self.batch = batch
            if node_events is not None:
                self.node_events = node_events
        else:
            self.rooms.discard(key)
        if self._on_rooms_changed is not None:
            self._on_rooms_changed()
        self.offer(_message(f"{action}d", {"room": room, "queue_id": queue_id}))

    async def _drain(self) -> None:
        buffer = self._buffer
        try:
            while self._close_request is None:
                await self._wake.wait()
                if self.batch:
                    # A shared frame the sink is about to hand out lands first, so that it joins this frame.
                    await asyncio.sleep(0)
                self._wake.clear()
                sent = 0
                while buffer:
                    if not self.batch or (buffer[0][3] is not None
                                          and (len(buffer) == 1 or buffer[0][2] >= BATCH_MAX)):
                        # One message, or the one frame built for every batching client: sent as it is.
                        frame, size, count, _ = buffer.popleft()
                    else:
                        frame, size, count = _merged(buffer)
                    self._buffered -= size
                    self._queued -= count
                    self._in_flight = size
                    self._sending = True
                    try:
                        # Returns without suspending while the socket's write buffer has room.
                        await self._send(frame)
                    finally:
                        self._sending = False
                        self._in_flight = 0
                    del frame
                    sent += 1
                    if sent % _FRAMES_PER_TURN == 0:
                        await asyncio.sleep(0)  # a long burst still lets the processor's loop work run
        except asyncio.CancelledError:
            if not self._send_aborted:
                raise
            # request_close interrupted a send the socket could not take; go on to the close.
            self._send_aborted = False
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
        except Exception:  # noqa: BLE001 - a socket that broke simply ends this client
            self.closed_reason = self.closed_reason or "the connection broke"
            return
        if self._close_request is not None:
            code, reason = self._close_request
            # A close reason may be at most 123 bytes (RFC 6455); ours are ASCII.
            with contextlib.suppress(Exception, asyncio.TimeoutError):
                await asyncio.wait_for(self._close(code, reason[:123]), self.close_timeout)


class _SharedFrames:
    """Messages for every batching client subscribed to one set of rooms: each frame is built once for all.

    The first message after a quiet spell goes out on the next loop turn; a stream of them is gathered into
    one frame per :data:`BATCH_INTERVAL`, so the cost per client is a frame per interval, not a message per event.
    """

    def __init__(self, rooms: frozenset[str], clients: list[WebSocketClient]) -> None:
        self.rooms = rooms
        self.clients = clients
        self.parts: list[str] = []
        """What the next frame holds: single messages, and runs' bodies (several messages joined with ``,``)."""
        self.counts: list[int] = []
        """How many messages each of :attr:`parts` is."""
        self.count = 0
        self.size = 0
        self.scheduled = False
        self.last = 0.0

    @property
    def messages(self) -> int:
        """How many messages wait for the next frame."""
        return self.count

    def add(self, message: str, size: int) -> None:
        self.parts.append(message)
        self.counts.append(1)
        self.count += 1
        self.size += size
        if not self.scheduled:
            self._schedule()

    def add_many(self, messages: list[str], size: int) -> None:
        """Messages that arrived together (``size``: their UTF-8 bytes in all)."""
        self.parts += messages
        self.counts += [1] * len(messages)
        self.count += len(messages)
        self.size += size
        if not self.scheduled:
            self._schedule()

    def add_run(self, body: str, size: int, count: int) -> None:
        """``count`` messages already joined with ``,`` (a run's body, at most :data:`BATCH_MAX` messages)."""
        self.parts.append(body)
        self.counts.append(count)
        self.count += count
        self.size += size
        if not self.scheduled:
            self._schedule()

    def _schedule(self) -> None:
        self.scheduled = True
        loop = asyncio.get_running_loop()
        wait = self.last + BATCH_INTERVAL - loop.time()
        if wait > 0:
            loop.call_later(wait, self.flush)
        else:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        self.last = asyncio.get_running_loop().time()
        parts, counts, total = self.parts, self.counts, self.count
        self.parts, self.counts, self.count, self.size = [], [], 0, 0
        if not total:
            return  # a frame scheduled before the rooms changed went out then
        if total <= BATCH_MAX:
            self._hand_out(parts, total)
            return
        chunk: list[str] = []
        count = 0
        for part, n in zip(parts, counts, strict=True):
            if chunk and count + n > BATCH_MAX:
                self._hand_out(chunk, count)
                chunk, count = [], 0
            chunk.append(part)
            count += n
        if chunk:
            self._hand_out(chunk, count)

    def _hand_out(self, parts: list[str], count: int) -> None:
        # The frame and its contents are built once for every client: a client that fell behind merges the
        # contents of the frames it has waiting without cutting each frame's brackets off a copy of its own.
        body = ",".join(parts)
        frame = "[" + body + "]"
        size = _size(frame)
        for client in self.clients:
            client.offer_frame(frame, size, count, body)


class _Targets:
    """The clients of one form of node events (full, brief or progress), by room: who gets a message in that form.

    Rebuilt whole whenever a client's rooms, framing or form change (rare); read on every event.
    """

    __slots__ = ("plain_by_room", "plain_everywhere", "shared_by_room", "shared_everywhere", "subscribed")

    def __init__(self, clients: Sequence[WebSocketClient]) -> None:
        self.subscribed = any(c.rooms for c in clients)
        """Whether one of these clients is subscribed to some room (a plain read, from any thread)."""
        plain = [c for c in clients if not c.batch]
        self.plain_everywhere: list[WebSocketClient] = plain
        self.plain_by_room: dict[str, list[WebSocketClient]] = {}
        for client in plain:
            for room in client.rooms:
                self.plain_by_room.setdefault(room, []).append(client)
        groups: dict[frozenset[str], list[WebSocketClient]] = {}
        for client in clients:
            if client.batch:
                groups.setdefault(frozenset(client.rooms), []).append(client)
        self.shared_everywhere = [_SharedFrames(rooms, members) for rooms, members in groups.items()]
        self.shared_by_room: dict[str, list[_SharedFrames]] = {}
        for shared in self.shared_everywhere:
            for room in shared.rooms:
                self.shared_by_room.setdefault(room, []).append(shared)

    def of(self, room: str | None) -> tuple[Sequence[WebSocketClient], Sequence[_SharedFrames]]:
        """Who gets an event of ``room`` (None: every connected client)."""
        if room is None:
            return self.plain_everywhere, self.shared_everywhere
        return self.plain_by_room.get(room, ()), self.shared_by_room.get(room, ())

    def flush(self) -> None:
        """Send what is gathered for each set of rooms, to the clients that had that set until now."""
        for shared in self.shared_everywhere:
            if shared.count:
                shared.flush()


_NOBODY = _Targets(())


class WebSocketSink:
    """Delivers events to subscribed websocket clients.

    Each event is encoded once per form (full, and brief for clients that asked for it). A client that takes one
    message per frame gets that text; clients that batch and share a set of rooms and a form share a
    :class:`_SharedFrames`, so a frame is joined once for all of them.
    """

    name = "websocket"

    def __init__(
        self,
        buffer: int = 10_000,
        *,
        buffer_bytes: int = 8 * 1024 * 1024,
        max_message_bytes: int = 64 * 1024,
        close_timeout: float = 5.0,
    ) -> None:
        self.buffer = buffer
        self.buffer_bytes = buffer_bytes
        self.max_message_bytes = max_message_bytes
        self.close_timeout = close_timeout
        self.clients: set[WebSocketClient] = set()
        self._subscribed = False
        self._full = _NOBODY
        """The clients of full node events (the default)."""
        self._brief = _NOBODY
        """The clients that asked for brief node events."""
        self._progress = _NOBODY
        """The clients that asked for per-item summaries instead of node events."""

    @property
    def _shared_everywhere(self) -> list[_SharedFrames]:
        """Every set of batching clients, of every form (what bench/event_cpu.py waits on)."""
        return self._full.shared_everywhere + self._brief.shared_everywhere + self._progress.shared_everywhere

    def wants(self, event_name: str) -> bool:
        """Whether a client would get an event of this name now: a queue's events need a client subscribed to
        some queue, other events a connected client. A plain attribute read, safe from any thread."""
        return self._subscribed if event_name in _QUEUE_EVENTS else bool(self.clients)

    def wants_full(self, event_name: str) -> bool:
        """Whether a client would get the full message of an event of this name now (for a node start or
        completion: a client of full node events is subscribed). A plain attribute read, safe from any thread."""
        return self._full.subscribed if event_name in BRIEF_EVENTS else self.wants(event_name)

    def wants_brief(self, event_name: str) -> bool:
        """Whether a client would get the brief form of an event of this name now. Safe from any thread."""
        return event_name in BRIEF_EVENTS and self._brief.subscribed

    def wants_progress(self, event_name: str) -> bool:
        """Whether a client would get summaries in place of events of this name now. Safe from any thread."""
        return event_name in BRIEF_EVENTS and self._progress.subscribed

    def _rooms_changed(self) -> None:
        # What is gathered for a set of rooms goes out first, to the clients that had that set until now.
        self._full.flush()
        self._brief.flush()
        self._progress.flush()
        live = [c for c in self.clients if c.closed_reason is None]
        self._subscribed = any(c.rooms for c in live)
        self._full = _Targets([c for c in live if c.node_events == "full"])
        self._brief = _Targets([c for c in live if c.node_events == "brief"])
        self._progress = _Targets([c for c in live if c.node_events == "progress"])

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Take the limits from the host's settings: ``ws_client_buffer`` (events), ``ws_client_buffer_bytes``,
        ``ws_max_message_bytes`` and ``ws_close_timeout``."""
        for setting, attribute in (
            ("ws_client_buffer", "buffer"),
            ("ws_client_buffer_bytes", "buffer_bytes"),
            ("ws_max_message_bytes", "max_message_bytes"),
        ):
            value = settings.get(setting)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                setattr(self, attribute, value)
        timeout = settings.get("ws_close_timeout")
        if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
            self.close_timeout = float(timeout)

    @property
    def buffered_bytes(self) -> int:
        """Bytes every connected client holds, together."""
        return sum(c.buffered_bytes for c in self.clients)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        clients = list(self.clients)
        for client in clients:
            client.request_close(CLOSE_GOING_AWAY, "the server is stopping")
        tasks = [c.task for c in clients]
        if tasks:
            await asyncio.wait(tasks, timeout=self.close_timeout)
        for task in tasks:
            task.cancel()
        self.clients.clear()
        for client in clients:
            client.release()

    def connect(self, send: Send, close: Close) -> WebSocketClient:
        """Register a newly accepted socket; it receives nothing until it subscribes."""
        client = WebSocketClient(
            send,
            close,
            self.buffer,
            limit_bytes=self.buffer_bytes,
            max_message_bytes=self.max_message_bytes,
            close_timeout=self.close_timeout,
            on_rooms_changed=self._rooms_changed,
        )
        self.clients.add(client)
        self._rooms_changed()  # it gets the events that go to every client
        return client

    async def disconnect(self, client: WebSocketClient) -> None:
        """Forget a client whose socket closed, stop its sender, and release what it held."""
        self.clients.discard(client)
        self._rooms_changed()
        client.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await client.task
        client.release()

    def deliver(self, event: BaseEvent) -> None:
        self._deliver_message(event.event_name, event.room(), lambda: encode_message(event), counted=False)

    def deliver_encoded(self, event: EncodedEvent) -> None:
        """Take an event already written as its message (the per-node events): its model is never built here."""
        self._deliver_message(event.event_name, event.room, lambda: event.message)

    def _deliver_message(self, name: str, room: str | None, message: Callable[[], str], *,
                         counted: bool = True) -> None:
        """One event, encoded (``message()``) only if a client gets it; brief clients get a node event's brief
        form, made from the full text (the host writes the brief form itself only in runs). Progress clients get no
        node event: the host counted it into a summary (``counted``), or, when it came typed from another node, a
        summary of that one node."""
        text: str | None = None
        for targets in (self._full, self._brief, self._progress):
            plain, shared = targets.of(room)
            if not plain and not shared:
                continue
            if text is None:
                text = message()
            form = text
            if name in BRIEF_EVENTS:
                if targets is self._brief:
                    form = brief_message(text)
                elif targets is self._progress:
                    summary = None if counted else progress_summary_message(text)
                    if summary is None:
                        continue
                    form = summary
            self._hand_out(name, form, plain, shared)

    def deliver_encoded_batch(self, events: Sequence[EncodedEvent]) -> None:
        """Take encoded events that reached the loop together: each run of one room is measured once and added to
        each shared frame in one step, so what a burst costs does not grow with the batching clients' number."""
        start, count = 0, len(events)
        while start < count:
            room = events[start].room
            end = start + 1
            while end < count and events[end].room == room:
                end += 1
            for targets in (self._full, self._brief, self._progress):
                plain, shared = targets.of(room)
                if not plain and not shared:
                    continue
                if targets is self._progress:
                    # The host counted these node events into its summaries (deliver_progress_run).
                    messages = [e.message for e in events[start:end] if e.event_name not in BRIEF_EVENTS]
                elif targets is self._brief:
                    messages = [brief_message(e.message) if e.event_name in BRIEF_EVENTS else e.message
                                for e in events[start:end]]
                else:
                    messages = [event.message for event in events[start:end]]
                self._offer_many(messages, plain, shared)
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("%d events from %s on for %d websocket clients", end - start,
                                 events[start].event_name, len(plain) + sum(len(f.clients) for f in shared))
            start = end

    def deliver_encoded_run(self, run: EncodedEventRun) -> None:
        """Take a run of one room's encoded events (a node thread's burst): its body, already one text, is added to
        each shared frame in one step; a client that takes one message per frame gets each message.

        Brief clients get only the run's events that have no brief form: the host writes the brief forms of node
        events into runs of their own (:meth:`deliver_brief_run`) while such a client is subscribed."""
        plain, shared = self._full.of(run.room)
        if plain or shared:
            self._take_run(run, plain, shared)
        for targets in (self._brief, self._progress):
            plain, shared = targets.of(run.room)
            if (plain or shared) and not run.event_names <= BRIEF_EVENTS:
                self._offer_many([e.message for e in run.events() if e.event_name not in BRIEF_EVENTS], plain, shared)

    def deliver_brief_run(self, run: EncodedEventRun) -> None:
        """Take a run of node events written in their brief form: for the clients that asked for it only."""
        plain, shared = self._brief.of(run.room)
        if plain or shared:
            self._take_run(run, plain, shared)

    def deliver_progress_run(self, run: EncodedEventRun) -> None:
        """Take a run of per-item summaries (the host's count of node events): for the progress clients only."""
        plain, shared = self._progress.of(run.room)
        if plain or shared:
            self._take_run(run, plain, shared)

    @staticmethod
    def _take_run(run: EncodedEventRun, plain: Sequence[WebSocketClient], shared: Sequence[_SharedFrames]) -> None:
        if plain or run.count > BATCH_MAX:
            messages = run.messages()
            sizes = [len(m) if m.isascii() else len(m.encode()) for m in messages]
            for client in plain:
                for message, size in zip(messages, sizes, strict=True):
                    client.offer(message, size)
            if run.count > BATCH_MAX:
                for frames in shared:
                    frames.add_many(messages, run.size - run.count + 1)
                shared = ()
        for frames in shared:
            frames.add_run(run.body, run.size, run.count)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("A run of %d events for %d websocket clients", run.count,
                         len(plain) + sum(len(f.clients) for f in shared))

    @staticmethod
    def _offer_many(messages: list[str], plain: Sequence[WebSocketClient], shared: Sequence[_SharedFrames]) -> None:
        if not messages:
            return
        sizes = [len(m) if m.isascii() else len(m.encode()) for m in messages]
        for client in plain:
            for message, size in zip(messages, sizes, strict=True):
                client.offer(message, size)
        if shared:
            total = sum(sizes)
            for frames in shared:
                frames.add_many(messages, total)

    @staticmethod
    def _hand_out(name: str, message: str, plain: Sequence[WebSocketClient], shared: Sequence[_SharedFrames]) -> None:
        # Encoded (and measured) once, whatever the number of clients.
        size = _size(message)
        for client in plain:
            client.offer(message, size)
        for frames in shared:
            frames.add(message, size)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("Event %s for %d websocket clients", name, len(plain) + sum(len(f.clients) for f in shared))
