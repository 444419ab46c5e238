"""The websocket sink: fans events out to connected clients by the rooms they subscribed to.

Each client has a bounded buffer and its own sender task, so a slow client never slows the
emitter (the processor) or the other clients. A client whose buffer fills up is disconnected with
a reason; it should reconnect and reload the state it shows. The Litestar handler that owns the
socket is :mod:`invoke_core_events.socket_route`; this module knows nothing of Litestar.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from invoke_sdk.events import BaseEvent

__all__ = ["BATCH_INTERVAL", "BATCH_MAX", "CLOSE_GOING_AWAY", "CLOSE_TOO_SLOW", "WebSocketClient", "WebSocketSink"]

logger = logging.getLogger("invoke_host.events.websocket")

CLOSE_TOO_SLOW = 4008
"""Close code for a client that fell too far behind."""
CLOSE_GOING_AWAY = 1001
"""Close code when the server stops."""

ROOMS = ("queue",)
"""Rooms a client may subscribe to; each is qualified by an id (``queue_id``)."""

BATCH_MAX = 1000
"""The most messages in one frame of a client that subscribed with ``"batch": true``."""
BATCH_INTERVAL = 0.02
"""Seconds between two frames of a batching client: under load a frame carries what came in meanwhile."""
_FRAMES_PER_TURN = 256

Send = Callable[[str], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]


def _message(event: str, data: Any) -> str:
    return json.dumps({"event": event, "data": data}, separators=(",", ":"))


class WebSocketClient:
    """One connected client: its rooms, its bounded buffer and the task that drains it.

    The buffer is a plain deque and the sender wakes through an event: ``offer`` is an append
    (called once per event per client, on the loop), and each wake-up of the sender sends
    everything that is waiting, not one message per loop turn.
    """

    def __init__(self, send: Send, close: Close, limit: int) -> None:
        self.rooms: set[str] = set()
        self.batch = False
        """Whether each frame carries a JSON array of every message waiting (opt-in at subscribe)."""
        self.limit = limit
        self.closed_reason: str | None = None
        self._send = send
        self._close = close
        self._buffer: deque[str] = deque()
        self._close_request: tuple[int, str] | None = None
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self._drain())

    def offer(self, message: str) -> None:
        """Queue a message; a client already ``limit`` messages behind is disconnected instead."""
        if self.closed_reason is not None:
            return
        if len(self._buffer) >= self.limit:
            self.request_close(
                CLOSE_TOO_SLOW,
                f"too slow: fell {self.limit} events behind; reconnect and reload the queue state",
            )
            return
        self._buffer.append(message)
        self._wake.set()

    def request_close(self, code: int, reason: str) -> None:
        """Drop what is buffered and close the socket with ``reason`` as soon as the sender gets to it."""
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        self._buffer.clear()
        self._close_request = (code, reason)
        self._wake.set()

    def handle(self, raw: Any) -> None:
        """Act on one message from the client (subscribe / unsubscribe) and queue the answer."""
        try:
            request = json.loads(raw)
        except (TypeError, ValueError):
            self.offer(_message("error", {"message": "messages must be JSON objects"}))
            return
        if not isinstance(request, dict):
            self.offer(_message("error", {"message": "messages must be JSON objects"}))
            return
        action = "subscribe" if "subscribe" in request else "unsubscribe" if "unsubscribe" in request else None
        room = request.get(action) if action else None
        queue_id = request.get("queue_id")
        batch = request.get("batch")
        if action is None or room not in ROOMS or not isinstance(queue_id, str) or not queue_id or (
                batch is not None and (action != "subscribe" or not isinstance(batch, bool))):
            self.offer(
                _message(
                    "error",
                    {
                        "message": 'expected {"subscribe": "queue", "queue_id": "<id>"} (optionally with '
                        '"batch": true or false) or {"unsubscribe": "queue", "queue_id": "<id>"}',
                        "received": request,
                    },
                )
            )
            return
        key = f"{room}:{queue_id}"
        if action == "subscribe":
            self.rooms.add(key)
            if batch is not None:
                self.batch = batch
        else:
            self.rooms.discard(key)
        self.offer(_message(f"{action}d", {"room": room, "queue_id": queue_id}))

    async def _drain(self) -> None:
        buffer = self._buffer
        loop = asyncio.get_running_loop()
        last_frame = 0.0
        while True:
            await self._wake.wait()
            if self.batch:
                # The first event after a quiet spell goes out at once; a stream of them is gathered
                # into a frame per interval, so the frame count (the cost) no longer grows with the event rate.
                wait = last_frame + BATCH_INTERVAL - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                last_frame = loop.time()
            self._wake.clear()
            sent = 0
            try:
                while buffer:
                    if self.batch:
                        count = min(len(buffer), BATCH_MAX)
                        frame = "[" + ",".join([buffer.popleft() for _ in range(count)]) + "]"
                    else:
                        frame = buffer.popleft()
                    # Returns without suspending while the socket's write buffer has room.
                    await self._send(frame)
                    sent += 1
                    if sent % _FRAMES_PER_TURN == 0:
                        await asyncio.sleep(0)  # a long burst still lets the processor's loop work run
            except Exception:  # noqa: BLE001 - a socket that broke simply ends this client
                self.closed_reason = self.closed_reason or "the connection broke"
                return
            if self._close_request is not None:
                with contextlib.suppress(Exception):
                    await self._close(*self._close_request)
                return


class WebSocketSink:
    """Delivers events to subscribed websocket clients."""

    name = "websocket"

    def __init__(self, buffer: int = 10_000) -> None:
        self.buffer = buffer
        self.clients: set[WebSocketClient] = set()

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Take the per-client buffer from the host's ``ws_client_buffer`` setting."""
        buffer = settings.get("ws_client_buffer")
        if isinstance(buffer, int) and buffer >= 1:
            self.buffer = buffer

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for client in list(self.clients):
            client.request_close(CLOSE_GOING_AWAY, "the server is stopping")
        tasks = [c.task for c in self.clients]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        for task in tasks:
            task.cancel()
        self.clients.clear()

    def connect(self, send: Send, close: Close) -> WebSocketClient:
        """Register a newly accepted socket; it receives nothing until it subscribes."""
        client = WebSocketClient(send, close, self.buffer)
        self.clients.add(client)
        return client

    async def disconnect(self, client: WebSocketClient) -> None:
        """Forget a client whose socket closed, and stop its sender."""
        self.clients.discard(client)
        client.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await client.task

    def deliver(self, event: BaseEvent) -> None:
        room = event.room()
        targets = [c for c in self.clients if room is None or room in c.rooms]
        if not targets:
            return
        # Encoded once, whatever the number of clients.
        message = f'{{"event":{json.dumps(event.event_name)},"data":{event.model_dump_json()}}}'
        for client in targets:
            client.offer(message)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("Event %s sent to %d websocket clients", event.event_name, len(targets))
