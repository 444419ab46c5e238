"""Which addresses URL installs may connect to, enforced on the address actually connected to.

The check lives in the connection layer (an httpcore network backend, in ``policy_network_backend``, imported
only by a download so that httpcore stays off start-up): the host name is resolved
here, every resolved address is judged, and the socket is opened to a judged IP itself, so a DNS
answer that changes between check and connect (rebinding) cannot slip past, and every redirect hop
passes through the same check.

Addresses are judged against our own table of the IANA special-purpose ranges, not Python's
``ipaddress`` flags: those differ between Python releases (3.11 calls 100.64.0.0/10 neither private
nor global, and 2002::/16 and 192.0.0.192 global). IPv4-mapped and NAT64 addresses are judged as the
IPv4 address they reach; 6to4, Teredo and local-use NAT64 are private and also judged by the IPv4
addresses they embed; IPv4-compatible and IPv4-translated addresses are never allowed.

Hugging Face downloads go through ``huggingface_hub``'s own HTTP client, which this module cannot
reach into; a configured ``HF_ENDPOINT`` is judged instead before the first request
(:func:`check_endpoint`): every address its host resolves to must be allowed.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["AddressPolicy", "AsyncResolver", "BlockedAddressError", "Resolver", "check_endpoint"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AsyncResolver = Callable[[str], Awaitable[list[str]]]
Resolver = Callable[[str], list[str]]


class BlockedAddressError(ValueError):
    """The URL's host resolves only to addresses the policy refuses."""


class _Kind(enum.Enum):
    """How bad an address is, worst first: (what it is, what to do about it)."""

    METADATA = ("a link-local / cloud-metadata address", ", never allowed")
    NOT_UNICAST = ("not a unicast host address", ", never allowed")
    LOOPBACK = (
        "a loopback address",
        "; allow it with download_allow_loopback (INVOKE_HOST_DOWNLOAD_ALLOW_LOOPBACK=true)",
    )
    PRIVATE = ("a private address", "; allow it with download_allow_private (INVOKE_HOST_DOWNLOAD_ALLOW_PRIVATE=true)")

    def says(self, where: str) -> str:
        what, remedy = self.value
        return f"is {what} ({where}){remedy}"


_net = ipaddress.ip_network

# Most specific first: the first network holding an address decides its kind.
_V4: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, _Kind, str], ...] = (
    (_net("169.254.0.0/16"), _Kind.METADATA, "link-local, cloud metadata at 169.254.169.254"),
    (_net("100.100.100.200/32"), _Kind.METADATA, "Alibaba Cloud metadata"),
    (_net("192.0.0.192/32"), _Kind.METADATA, "Oracle Cloud metadata"),
    # Connecting to 0.0.0.0 reaches this host on Linux: a loopback bypass if it counted as private.
    (_net("0.0.0.0/8"), _Kind.NOT_UNICAST, "this host / this network"),
    (_net("224.0.0.0/4"), _Kind.NOT_UNICAST, "multicast"),
    (_net("240.0.0.0/4"), _Kind.NOT_UNICAST, "reserved, holds the broadcast address"),
    (_net("127.0.0.0/8"), _Kind.LOOPBACK, "loopback"),
    (_net("10.0.0.0/8"), _Kind.PRIVATE, "private-use"),
    (_net("100.64.0.0/10"), _Kind.PRIVATE, "carrier-grade NAT shared space"),
    (_net("172.16.0.0/12"), _Kind.PRIVATE, "private-use"),
    (_net("192.0.0.0/24"), _Kind.PRIVATE, "IETF protocol assignments"),
    (_net("192.0.2.0/24"), _Kind.PRIVATE, "documentation"),
    (_net("192.88.99.0/24"), _Kind.PRIVATE, "6to4 relay anycast"),
    (_net("192.168.0.0/16"), _Kind.PRIVATE, "private-use"),
    (_net("198.18.0.0/15"), _Kind.PRIVATE, "benchmarking"),
    (_net("198.51.100.0/24"), _Kind.PRIVATE, "documentation"),
    (_net("203.0.113.0/24"), _Kind.PRIVATE, "documentation"),
)

_MAPPED = _net("::ffff:0:0/96")
_NAT64 = _net("64:ff9b::/96")
_NAT64_LOCAL = _net("64:ff9b:1::/48")
_SIXTOFOUR = _net("2002::/16")
_TEREDO = _net("2001::/32")
_GLOBAL_UNICAST = _net("2000::/3")

_V6: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, _Kind, str], ...] = (
    (_net("fe80::/10"), _Kind.METADATA, "link-local"),
    (_net("fd00:ec2::254/128"), _Kind.METADATA, "AWS metadata"),
    (_net("::/128"), _Kind.NOT_UNICAST, "unspecified"),
    (_net("ff00::/8"), _Kind.NOT_UNICAST, "multicast"),
    (_net("::1/128"), _Kind.LOOPBACK, "loopback"),
    (_net("::/96"), _Kind.NOT_UNICAST, "IPv4-compatible, deprecated"),
    (_net("::ffff:0:0:0/96"), _Kind.NOT_UNICAST, "IPv4-translated"),
    (_NAT64_LOCAL, _Kind.PRIVATE, "local-use NAT64"),
    (_net("100::/64"), _Kind.NOT_UNICAST, "discard-only"),
    (_net("fc00::/7"), _Kind.PRIVATE, "unique local"),
    (_net("fec0::/10"), _Kind.PRIVATE, "site-local, deprecated"),
    (_SIXTOFOUR, _Kind.PRIVATE, "6to4 tunnel"),
    (_TEREDO, _Kind.PRIVATE, "Teredo tunnel"),
    (_net("2001::/23"), _Kind.PRIVATE, "IETF protocol assignments"),
    (_net("2001:db8::/32"), _Kind.PRIVATE, "documentation"),
    (_net("3fff::/20"), _Kind.PRIVATE, "documentation"),
)


def _embedded(ip: ipaddress.IPv6Address) -> list[tuple[ipaddress.IPv4Address, str]]:
    """The IPv4 addresses an IPv6 address leads to, each with the mechanism's name."""
    if ip in _TEREDO:
        assert ip.teredo is not None
        server, client = ip.teredo
        return [(server, "Teredo server"), (client, "Teredo client")]
    if ip in _SIXTOFOUR:
        assert ip.sixtofour is not None
        return [(ip.sixtofour, "6to4")]
    if ip in _NAT64_LOCAL:
        return [(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "local-use NAT64")]
    # IPv4-compatible and IPv4-translated addresses are never allowed themselves: what they embed cannot matter.
    return []


def _findings(ip: IPAddress) -> list[tuple[_Kind, str]]:
    """Every reason the address may be refused, as (kind, a sentence saying why)."""
    if isinstance(ip, ipaddress.IPv6Address):
        # The socket reaches exactly this IPv4 address (dual-stack mapping, or the NAT64 gateway): judge only it.
        for carrier, label in ((_MAPPED, "IPv4-mapped"), (_NAT64, "NAT64")):
            if ip in carrier:
                v4 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
                return [(kind, f"{ip} ({label}) leads to {v4}, which {why}") for kind, why in _direct(v4)]
        found = [(kind, f"{ip} {why}") for kind, why in _direct(ip)]
        for v4, label in _embedded(ip):
            found += [(kind, f"{ip} ({label}) embeds {v4}, which {why}") for kind, why in _direct(v4)]
        return found
    return [(kind, f"{ip} {why}") for kind, why in _direct(ip)]


def _direct(ip: IPAddress) -> list[tuple[_Kind, str]]:
    """The address's own range, without looking inside it."""
    table = _V6 if isinstance(ip, ipaddress.IPv6Address) else _V4
    for net, kind, label in table:
        if ip in net:
            return [(kind, kind.says(f"{label}, {net}"))]
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _GLOBAL_UNICAST:
        return [(_Kind.NOT_UNICAST, _Kind.NOT_UNICAST.says("outside 2000::/3, the global unicast space"))]
    return []


@dataclass(frozen=True)
class AddressPolicy:
    """Link-local / cloud-metadata and non-unicast addresses are always refused; loopback and private
    (every other special-purpose range) only when allowed."""

    allow_private: bool = False
    allow_loopback: bool = False

    def refusal(self, address: str) -> str | None:
        """Why ``address`` (an IP literal, IPv6 with or without a zone) is refused, or None when it may be used."""
        findings = _findings(ipaddress.ip_address(address))
        for kind in _Kind:  # worst first
            for found, why in findings:
                if found is kind and not self._permits(kind):
                    return why
        return None

    def _permits(self, kind: _Kind) -> bool:
        return (kind is _Kind.LOOPBACK and self.allow_loopback) or (kind is _Kind.PRIVATE and self.allow_private)

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


def _resolve_blocking(host: str) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None)]


def check_endpoint(url: str, policy: AddressPolicy, *, what: str = "endpoint", resolve: Resolver | None = None) -> None:
    """Refuse (:class:`BlockedAddressError`) a service URL whose host resolves to any refused address.

    Blocking (DNS): call it in a worker thread. Stricter than :class:`PolicyNetworkBackend`, which
    picks an allowed address: here another client connects, to whichever address it likes.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedAddressError(f"the {what} {url!r} is not an http(s) URL")
    try:
        addresses = (resolve or _resolve_blocking)(parts.hostname)
    except OSError as exc:
        raise BlockedAddressError(f"cannot resolve the {what} {parts.hostname!r}: {exc}") from exc
    if not addresses:
        raise BlockedAddressError(f"the {what} {parts.hostname!r} resolves to no address")
    _, refused = policy.allowed(dict.fromkeys(addresses))
    if refused:
        raise BlockedAddressError(f"refusing the {what} {url}: {'; '.join(refused)}")
