"""What every guard needs from ASGI: the callable types, the request's headers, and a refusal."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

__all__ = ["ASGIApp", "Middleware", "Receive", "Scope", "Send", "header_map", "header_value", "refuse"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Middleware = Callable[[ASGIApp], ASGIApp]


def header_map(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (the last one wins where a name repeats)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def header_value(scope: Scope, name: bytes) -> str | None:
    """One header of the request (``name`` in lower case; the last one wins where it repeats), or None.

    For a guard that needs one header: :func:`header_map` decodes every header, a few µs on every request.
    """
    value: bytes | None = None
    for key, item in scope.get("headers", []):
        if key == name or key.lower() == name:
            value = item
    return value.decode("latin-1") if value is not None else None


async def refuse(
    scope: Scope, send: Send, status: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Answer ``{"status_code": ..., "detail": message}`` without running the app.

    A websocket handshake gets the same HTTP answer where the server offers the ASGI denial-response
    extension (uvicorn does); elsewhere it is closed before being accepted, with code 4000 + status.
    """
    body = json.dumps({"status_code": status, "detail": message}).encode()
    response_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    if scope["type"] == "websocket":
        if "websocket.http.response" not in scope.get("extensions", {}):
            await send({"type": "websocket.close", "code": 4000 + status, "reason": message[:120]})
            return
        await send({"type": "websocket.http.response.start", "status": status, "headers": response_headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})
