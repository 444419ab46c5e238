"""Answer only to this server's own host names, so a DNS-rebound web page is turned away.

A page on ``evil.example`` whose DNS is switched to 127.0.0.1 is same-origin with itself, so the
browser lets it talk to this server freely; the one thing it cannot change is the ``Host``
header, which names ``evil.example``. Refusing unknown host names before any route runs closes
that hole for every route, plugin routes and websockets included.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from invoke_host.security._asgi import ASGIApp, Middleware, Receive, Scope, Send, header_value, refuse

__all__ = ["HostAllowList", "host_check_middleware", "host_name"]

_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header: no port, no IPv6 brackets, no trailing dot, lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_loopback_name(name: str) -> bool:
    # Browsers resolve localhost and *.localhost to loopback themselves (RFC 6761), so no
    # attacker's DNS can stand behind those names.
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _same_address(name: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(name) == ipaddress.ip_address(address)
    except ValueError:
        return False


class HostAllowList:
    """The host names a request may name: loopback names, the bound address, and the configured ones.

    On a wildcard bind (``0.0.0.0``, ``::``) the address a connection arrived on counts too, so
    ``http://192.168.1.5:9090`` works from the LAN: an IP literal can never be a rebound name.
    ``*`` among the configured names allows any name; that disables this protection.
    """

    def __init__(self, bind_host: str, configured: Iterable[str] = ()) -> None:
        names = {host_name(n) for n in configured}
        self.allow_any = "*" in names
        names.discard("*")
        bound = host_name(bind_host)
        if bound not in _WILDCARD_BINDS:
            names.add(bound)
        self.names = frozenset(names)

    def allows(self, host_header: str | None, local_address: str | None) -> bool:
        """Whether a request with this ``Host`` header, reaching ``local_address``, is for this server."""
        if self.allow_any or host_header is None:
            # No Host header (HTTP/1.0 tools) is no browser, and so no rebinding.
            return True
        name = host_name(host_header)
        return (
            name in self.names
            or _is_loopback_name(name)
            or (local_address is not None and _same_address(name, local_address))
        )


def host_check_middleware(allowed: HostAllowList) -> Middleware:
    """Refuse (421) every HTTP request and websocket handshake whose ``Host`` is not in ``allowed``."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] not in ("http", "websocket"):
                await app(scope, receive, send)
                return
            host = header_value(scope, b"host")
            server = scope.get("server")
            if allowed.allows(host, str(server[0]) if server else None):
                await app(scope, receive, send)
                return
            name = host_name(host or "")[:100]
            await refuse(
                scope,
                send,
                421,
                f"this server does not answer to the host name {name!r} (the Host header); if you reach it "
                f"under that name, add it to allowed_hosts (INVOKE_HOST_ALLOWED_HOSTS={name})",
            )

        return middleware

    return wrap
