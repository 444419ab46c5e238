"""The access token: every non-public request must carry it in a header, never in the URL.

HTTP clients send ``Authorization: Bearer <token>`` (or ``X-Invoke-Token: <token>``). A browser
cannot set headers on a websocket handshake, but it can offer subprotocols, so a websocket may
send the token as the subprotocol ``invoke-host.bearer.<token>`` next to the protocol it speaks
(as Kubernetes does): ``new WebSocket(url, ["invoke-host.events", "invoke-host.bearer." + token])``.
The bearer entry is taken out of the scope before the route sees it, so the route never echoes it
and nothing downstream can log it. ``?token=`` is refused: URLs end up in access logs, proxy logs
and browser history.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import parse_qs

from invoke_host.api_versions import API_V1
from invoke_host.security._asgi import ASGIApp, Middleware, Receive, Scope, Send, header_map, refuse

__all__ = ["BEARER_SUBPROTOCOL_PREFIX", "PUBLIC_PATHS", "access_token_middleware", "is_public"]

PUBLIC_PATHS = (f"{API_V1}/app/version", "/schema")
"""Paths (and, for ``/schema``, everything under it) that answer without the access token."""

BEARER_SUBPROTOCOL_PREFIX = "invoke-host.bearer."
"""A websocket subprotocol starting with this carries the access token after the prefix."""

_HOW = (
    f"send 'Authorization: Bearer <token>', or on a browser websocket the subprotocol '{BEARER_SUBPROTOCOL_PREFIX}"
    "<token>' beside the socket's own ('invoke-host.events' on /ws)"
)


def is_public(path: str) -> bool:
    """Whether ``path`` answers without the access token."""
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


def _split_bearer_subprotocol(scope: Scope) -> tuple[Scope, str | None]:
    """The scope without any bearer subprotocol, and the token that one carried."""
    offered = [str(p).strip() for p in scope.get("subprotocols", [])]
    bearer = [p for p in offered if p.startswith(BEARER_SUBPROTOCOL_PREFIX)]
    if not bearer:
        return scope, None
    rest = [p for p in offered if not p.startswith(BEARER_SUBPROTOCOL_PREFIX)]
    headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"sec-websocket-protocol"]
    if rest:
        headers.append((b"sec-websocket-protocol", ", ".join(rest).encode("latin-1")))
    return {**scope, "subprotocols": rest, "headers": headers}, bearer[0][len(BEARER_SUBPROTOCOL_PREFIX):]


def _public_handler(scope: Scope, public_handlers: Collection[Callable[..., Any]]) -> bool:
    # The router has chosen the handler before route middleware runs; only the host's own static-file handler
    # functions (invoke_host.static_assets) are in the set, so no path, option or handler a plugin makes is.
    if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
        return False
    return getattr(scope.get("route_handler"), "fn", None) in public_handlers


def access_token_middleware(token: str, public_handlers: Collection[Callable[..., Any]] = ()) -> Middleware:
    """Require the access token on every request and websocket handshake outside :data:`PUBLIC_PATHS`.

    ``public_handlers`` are the functions of the host's static-file handlers (plugins' ``StaticAssets``): a GET
    routed to one of them answers without the token.
    """
    expected = token.encode()

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] not in ("http", "websocket") or is_public(scope.get("path", "")) or _public_handler(
                scope, public_handlers
            ):
                await app(scope, receive, send)
                return
            headers = header_map(scope)
            offered = headers.get("x-invoke-token")
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                offered = auth[7:].strip()
            if scope["type"] == "websocket":
                scope, from_subprotocol = _split_bearer_subprotocol(scope)
                if from_subprotocol is not None:
                    if not scope["subprotocols"]:
                        await refuse(
                            scope,
                            send,
                            400,
                            f"offer the socket's own subprotocol ('invoke-host.events' on /ws) beside "
                            f"'{BEARER_SUBPROTOCOL_PREFIX}<token>': the server answers with that one, and a browser "
                            "drops a handshake whose answer names none of the offered subprotocols",
                        )
                        return
                    offered = offered if offered is not None else from_subprotocol
            if offered is None:
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                if "token" in query:
                    await refuse(
                        scope,
                        send,
                        400,
                        f"the access token is refused in the URL (?token=), which logs keep: {_HOW}",
                    )
                    return
            if offered is None or not hmac.compare_digest(offered.encode(), expected):
                await refuse(
                    scope,
                    send,
                    401,
                    f"this server requires an access token: {_HOW}" if offered is None else "the access token is wrong",
                    [(b"www-authenticate", b'Bearer realm="invoke-host"')],
                )
                return
            await app(scope, receive, send)

        return middleware

    return wrap
