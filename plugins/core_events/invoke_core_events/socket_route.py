"""``/ws``: live events. Subscribe with ``{"subscribe": "queue", "queue_id": "..."}``.

The socket passes through the host's host-name, access-token and cross-site middleware like every
route. A browser, which cannot set headers on a handshake, offers the token as a second
subprotocol beside :data:`EVENTS_SUBPROTOCOL`:
``new WebSocket(url, ["invoke-host.events", "invoke-host.bearer." + token])``; the host takes the
bearer entry out before this route runs, and the route answers with :data:`EVENTS_SUBPROTOCOL`
(a browser drops a handshake whose answer names none of the subprotocols it offered). The route
finds this host's websocket sink through the SDK's :data:`~invoke_sdk.events.EVENT_SINKS_STATE_KEY`;
delivery and buffering live in :class:`WebSocketSink`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

from invoke_sdk.events import EVENT_SINKS_STATE_KEY, EventSinkDirectory
from litestar import WebSocket, websocket

from invoke_core_events.websocket_sink import WebSocketSink

__all__ = ["EVENTS_SUBPROTOCOL", "events_socket"]

EVENTS_SUBPROTOCOL = "invoke-host.events"
"""The subprotocol this socket speaks; chosen when the client offers it, optional otherwise."""


@websocket("/ws", name="events_socket")
async def events_socket(socket: WebSocket) -> None:  # type: ignore[type-arg]
    directory = socket.app.state.get(EVENT_SINKS_STATE_KEY)
    sink = directory.sink(WebSocketSink.name) if isinstance(directory, EventSinkDirectory) else None
    offered = socket.scope.get("subprotocols") or []
    await socket.accept(subprotocols=EVENTS_SUBPROTOCOL if EVENTS_SUBPROTOCOL in offered else None)
    if not isinstance(sink, WebSocketSink):
        await socket.close(code=1011, reason="events are not available on this server")
        return

    async def close(code: int, reason: str) -> None:
        await socket.close(code=code, reason=reason)

    send = socket.send

    def send_text(text: str) -> Awaitable[None]:
        # The ASGI event handed down as it is: Litestar's send_text would build the same dict in two more
        # coroutines per message, and 20 clients taking one message per frame are 800,000 sends per 10,000-item
        # graph. The socket's own send still checks that it is open.
        return send({"type": "websocket.send", "bytes": None, "text": text})

    client = sink.connect(send_text, close)

    async def receive() -> None:
        while True:
            client.handle(await socket.receive_text())

    receiver = asyncio.create_task(receive())
    try:
        # Ends when the client hangs up (receiver) or the sink closed the socket (sender).
        await asyncio.wait({receiver, client.task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        receiver.cancel()
        with contextlib.suppress(BaseException):
            await receiver
        await sink.disconnect(client)
