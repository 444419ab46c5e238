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
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from invoke_sdk.events import BaseEvent

__all__ = ["CLOSE_GOING_AWAY", "CLOSE_TOO_SLOW", "WebSocketClient", "WebSocketSink"]

logger = logging.getLogger("invoke_host.events.websocket")

CLOSE_TOO_SLOW = 4008
"""Close code for a client that fell too far behind."""
CLOSE_GOING_AWAY = 1001
"""Close code when the server stops."""

ROOMS = ("queue",)
"""Rooms a client may subscribe to; each is qualified by an id (``queue_id``)."""

Send = Callable[[str], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]


class _CloseRequest:
    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


def _message(event: str, data: Any) -> str:
    return json.dumps({"event": event, "data": data}, separators=(",", ":"))


class WebSocketClient:
    """One connected client: its rooms, its bounded buffer and the task that drains it."""

    def __init__(self, send: Send, close: Close, limit: int) -> None:
        self.rooms: set[str] = set()
        self.limit = limit
        self.closed_reason: str | None = None
        self._send = send
        self._close = close
        # One slot more than the limit, kept for the close request itself.
        self._buffer: asyncio.Queue[str | _CloseRequest] = asyncio.Queue(maxsize=limit + 1)
        self.task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self._drain())

    def offer(self, message: str) -> None:
        """Queue a message; a client already ``limit`` messages behind is disconnected instead."""
        if self.closed_reason is not None:
            return
        if self._buffer.qsize() >= self.limit:
            self.request_close(
                CLOSE_TOO_SLOW,
                f"too slow: fell {self.limit} events behind; reconnect and reload the queue state",
            )
            return
        self._buffer.put_nowait(message)

    def request_close(self, code: int, reason: str) -> None:
        """Drop what is buffered and close the socket with ``reason`` as soon as the sender gets to it."""
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        while not self._buffer.empty():
            self._buffer.get_nowait()
        self._buffer.put_nowait(_CloseRequest(code, reason))

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
        if action is None or room not in ROOMS or not isinstance(queue_id, str) or not queue_id:
            self.offer(
                _message(
                    "error",
                    {
                        "message": 'expected {"subscribe": "queue", "queue_id": "<id>"} or '
                        '{"unsubscribe": "queue", "queue_id": "<id>"}',
                        "received": request,
                    },
                )
            )
            return
        key = f"{room}:{queue_id}"
        if action == "subscribe":
            self.rooms.add(key)
        else:
            self.rooms.discard(key)
        self.offer(_message(f"{action}d", {"room": room, "queue_id": queue_id}))

    async def _drain(self) -> None:
        while True:
            item = await self._buffer.get()
            if isinstance(item, _CloseRequest):
                with contextlib.suppress(Exception):
                    await self._close(item.code, item.reason)
                return
            try:
                await self._send(item)
            except Exception:  # noqa: BLE001 - a socket that broke simply ends this client
                self.closed_reason = self.closed_reason or "the connection broke"
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
