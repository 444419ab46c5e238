"""The access token: every non-public request must carry it."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from invoke_host.security._asgi import ASGIApp, Middleware, Receive, Scope, Send, header_map, refuse

__all__ = ["PUBLIC_PATHS", "access_token_middleware", "is_public"]

PUBLIC_PATHS = ("/api/v1/app/version", "/schema")
"""Paths (and, for ``/schema``, everything under it) that answer without the access token."""


def is_public(path: str) -> bool:
    """Whether ``path`` answers without the access token."""
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


def access_token_middleware(token: str) -> Middleware:
    """Require ``Authorization: Bearer <token>`` (or ``X-Invoke-Token``; ``?token=`` on websockets)."""
    expected = token.encode()

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] not in ("http", "websocket") or is_public(scope.get("path", "")):
                await app(scope, receive, send)
                return
            headers = header_map(scope)
            offered = headers.get("x-invoke-token")
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                offered = auth[7:].strip()
            if offered is None and scope["type"] == "websocket":
                # Browsers cannot set headers on a websocket handshake.
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                offered = (query.get("token") or [None])[0]
            if offered is None or not hmac.compare_digest(offered.encode(), expected):
                await refuse(
                    scope,
                    send,
                    401,
                    "this server requires an access token: send 'Authorization: Bearer <token>'"
                    if offered is None
                    else "the access token is wrong",
                    [(b"www-authenticate", b'Bearer realm="invoke-host"')],
                )
                return
            await app(scope, receive, send)

        return middleware

    return wrap
