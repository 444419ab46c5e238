"""Refuse state-changing requests and websocket handshakes that a foreign web page started."""

from __future__ import annotations

from urllib.parse import urlsplit

from invoke_host.security._asgi import ASGIApp, Middleware, Receive, Scope, Send, header_map, refuse

__all__ = ["SAFE_METHODS", "cross_site_middleware"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that only read, so a foreign page may send them (CORS still decides what it may see)."""

_DEFAULT_PORTS = {"http": "80", "https": "443"}
# A websocket handshake is judged by the page that opened it, whose origin is http(s).
_PAGE_SCHEME = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def _with_port(netloc: str, scheme: str) -> str:
    has_port = ":" in netloc.rsplit("]", 1)[-1]
    return netloc if has_port else f"{netloc}:{_DEFAULT_PORTS.get(scheme, '')}"


def _same_origin(origin: str, headers: dict[str, str], scope: Scope) -> bool:
    """Whether ``origin`` is this server as the request reached it: same scheme, host and port."""
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc:
        return False
    scheme = _PAGE_SCHEME.get(str(scope.get("scheme", "http")), "http")
    if parts.scheme.lower() != scheme:
        # http://host and https://host are different origins: a page served over one may not
        # act on the other.
        return False
    host = headers.get("host")
    if host is None:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else ""
    return _with_port(parts.netloc, scheme).lower() == _with_port(host, scheme).lower()


def cross_site_middleware(allowed_origins: list[str]) -> Middleware:
    """Refuse state-changing requests and websocket handshakes that a foreign web page started.

    A browser marks them with ``Sec-Fetch-Site: cross-site`` or an ``Origin`` other than this
    server's (``null`` from sandboxed pages and files); tools like curl send neither and pass.
    The Host this compares with has already been checked against the allowed host names, so a
    page on a rebound name never counts as same-origin.
    """
    allowed = {o.rstrip("/").lower() for o in allowed_origins}

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            kind = scope["type"]
            if (kind == "http" and scope.get("method", "GET") in SAFE_METHODS) or kind not in ("http", "websocket"):
                await app(scope, receive, send)
                return
            headers = header_map(scope)
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
                        f"requests from origin {origin[:200]} may not change anything on this server; "
                        "add it to cors_origins (INVOKE_HOST_CORS_ORIGINS) to allow it"
                    )
            if reason is not None:
                await refuse(scope, send, 403, reason)
                return
            await app(scope, receive, send)

        return middleware

    return wrap
