"""Which addresses URL installs may connect to, enforced on the address actually connected to.

The check lives in the connection layer (an httpcore network backend): the host name is resolved
here, every resolved address is judged, and the socket is opened to the judged IP itself, so a DNS
answer that changes between check and connect (rebinding) cannot slip past, and every redirect hop
passes through the same check.

Hugging Face downloads go through ``huggingface_hub``'s own HTTP client, which this module cannot
reach into; a configured ``HF_ENDPOINT`` is judged instead before the first request
(:func:`check_endpoint`): every address its host resolves to must be allowed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore

__all__ = ["AddressPolicy", "BlockedAddressError", "PolicyNetworkBackend", "check_endpoint"]

_METADATA = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


class BlockedAddressError(ValueError):
    """The URL's host resolves only to addresses the policy refuses."""


@dataclass(frozen=True)
class AddressPolicy:
    """Link-local / cloud-metadata addresses are always refused; private and loopback only when allowed."""

    allow_private: bool = False
    allow_loopback: bool = False

    def refusal(self, address: str) -> str | None:
        """Why ``address`` is refused, or None when it may be used."""
        ip = ipaddress.ip_address(address.split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in _METADATA) or ip.is_link_local:
            return f"{ip} is a link-local / cloud-metadata address"
        if ip.is_loopback:
            return (
                None if self.allow_loopback else f"{ip} is a loopback address (allow it with download_allow_loopback)"
            )
        if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
            return None if self.allow_private else f"{ip} is a private address (allow it with download_allow_private)"
        return None

    def allowed(self, addresses: Iterable[str]) -> tuple[list[str], list[str]]:
        """The allowed addresses and the reasons for the refused ones."""
        ok: list[str] = []
        refused: list[str] = []
        for address in addresses:
            reason = self.refusal(address)
            if reason is None:
                ok.append(address)
            else:
                refused.append(reason)
        return ok, refused


class PolicyNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, judges, then connects to the judged IP (TLS still verifies the original host name)."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed, refused = self.policy.allowed(addresses)
        if not allowed:
            raise BlockedAddressError(f"refusing to connect to {host}: {'; '.join(refused)}")
        last: Exception | None = None
        for address in allowed:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError("unix sockets are not used for downloads")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def check_endpoint(url: str, policy: AddressPolicy, *, what: str = "endpoint") -> None:
    """Refuse (:class:`BlockedAddressError`) a service URL whose host resolves to any refused address.

    Blocking (DNS): call it in a worker thread. Stricter than :class:`PolicyNetworkBackend`, which
    picks an allowed address: here another client connects, to whichever address it likes.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedAddressError(f"the {what} {url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise BlockedAddressError(f"cannot resolve the {what} {parts.hostname!r}: {exc}") from exc
    _, refused = policy.allowed(dict.fromkeys(str(info[4][0]) for info in infos))
    if refused:
        raise BlockedAddressError(f"refusing the {what} {url}: {'; '.join(refused)}")
