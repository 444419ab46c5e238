"""Access token and cross-site protection, as plain ASGI middleware in front of every route.

Both run before any handler, plugin-contributed ones included, so a route cannot forget them.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["PUBLIC_PATHS", "access_token_middleware", "cross_site_middleware"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PUBLIC_PATHS = ("/api/v1/app/version", "/schema")
"""Paths (and, for ``/schema``, everything under it) that answer without the access token."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _is_public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    if scope["type"] == "websocket":
        # Closing before accepting makes the server answer the handshake with 403.
        await send({"type": "websocket.close", "code": 4000 + status, "reason": message[:120]})
        return
    body = json.dumps({"status_code": status, "detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="invoke-host"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def access_token_middleware(token: str) -> Callable[[ASGIApp], ASGIApp]:
    """Require ``Authorization: Bearer <token>`` (or ``X-Invoke-Token``; ``?token=`` on websockets)."""
    expected = token.encode()

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] not in ("http", "websocket") or _is_public(scope.get("path", "")):
                await app(scope, receive, send)
                return
            headers = _headers(scope)
            offered = headers.get("x-invoke-token")
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                offered = auth[7:].strip()
            if offered is None and scope["type"] == "websocket":
                # Browsers cannot set headers on a websocket handshake.
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                offered = (query.get("token") or [None])[0]
            if offered is None or not hmac.compare_digest(offered.encode(), expected):
                await _refuse(
                    scope,
                    send,
                    401,
                    "this server requires an access token: send 'Authorization: Bearer <token>'"
                    if offered is None
                    else "the access token is wrong",
                )
                return
            await app(scope, receive, send)

        return middleware

    return wrap


def _same_origin(origin: str, headers: dict[str, str], scope: Scope) -> bool:
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc:
        return False
    host = headers.get("host")
    if host is None:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else ""
    default_port = {"http": "80", "https": "443"}.get(parts.scheme, "")
    origin_host = parts.netloc if ":" in parts.netloc.rsplit("]", 1)[-1] else f"{parts.netloc}:{default_port}"
    req_host = host if ":" in host.rsplit("]", 1)[-1] else f"{host}:{default_port}"
    return origin_host.lower() == req_host.lower()


def cross_site_middleware(allowed_origins: list[str]) -> Callable[[ASGIApp], ASGIApp]:
    """Refuse state-changing requests and websocket handshakes that a foreign web page started.

    A browser marks them with ``Sec-Fetch-Site: cross-site`` or an ``Origin`` other than this
    server's (``null`` from sandboxed pages and files); tools like curl send neither and pass.
    """
    allowed = {o.rstrip("/").lower() for o in allowed_origins}

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            kind = scope["type"]
            if (kind == "http" and scope.get("method", "GET") in SAFE_METHODS) or kind not in ("http", "websocket"):
                await app(scope, receive, send)
                return
            headers = _headers(scope)
            origin = headers.get("origin")
            reason = None
            if headers.get("sec-fetch-site") == "cross-site" and (origin or "").lower() not in allowed:
                reason = "cross-site requests may not change anything on this server"
            elif origin is not None:
                if origin.strip().lower() == "null":
                    reason = "requests from an opaque origin ('Origin: null') may not change anything on this server"
                elif origin.rstrip("/").lower() not in allowed and "*" not in allowed and not _same_origin(
                    origin, headers, scope
                ):
                    reason = (
                        f"requests from origin {origin} may not change anything on this server; "
                        "add it to INVOKE_HOST_CORS_ORIGINS to allow it"
                    )
            if reason is not None:
                await _refuse(scope, send, 403, reason)
                return
            await app(scope, receive, send)

        return middleware

    return wrap
