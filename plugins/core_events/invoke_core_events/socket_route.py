"""``/ws``: live events. Subscribe with ``{"subscribe": "queue", "queue_id": "..."}``.

The socket passes through the host's access-token and cross-site middleware like every route
(browsers send the token as ``?token=``). The route finds this host's websocket sink through the
SDK's :data:`~invoke_sdk.events.EVENT_SINKS_STATE_KEY`; delivery and buffering live in
:class:`WebSocketSink`.
"""

from __future__ import annotations

import asyncio
import contextlib

from invoke_sdk.events import EVENT_SINKS_STATE_KEY, EventSinkDirectory
from litestar import WebSocket, websocket

from invoke_core_events.websocket_sink import WebSocketSink

__all__ = ["events_socket"]


@websocket("/ws", name="events_socket")
async def events_socket(socket: WebSocket) -> None:  # type: ignore[type-arg]
    directory = socket.app.state.get(EVENT_SINKS_STATE_KEY)
    sink = directory.sink(WebSocketSink.name) if isinstance(directory, EventSinkDirectory) else None
    await socket.accept()
    if not isinstance(sink, WebSocketSink):
        await socket.close(code=1011, reason="events are not available on this server")
        return

    async def close(code: int, reason: str) -> None:
        await socket.close(code=code, reason=reason)

    client = sink.connect(socket.send_text, close)

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
