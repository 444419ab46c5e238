"""``/ws``: live events. Subscribe with ``{"subscribe": "queue", "queue_id": "..."}``.

The socket passes through the same access-token and cross-site middleware as every route
(browsers send the token as ``?token=``). Delivery and buffering live in
:class:`invoke_host.events.WebSocketSink`.
"""

from __future__ import annotations

import asyncio
import contextlib

from litestar import WebSocket, websocket

from invoke_host.events import WebSocketSink

__all__ = ["events_socket"]


@websocket("/ws", name="events_socket")
async def events_socket(socket: WebSocket) -> None:  # type: ignore[type-arg]
    host = socket.app.state.host
    sink = host.events.sink("websocket") if host.events is not None else None
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
