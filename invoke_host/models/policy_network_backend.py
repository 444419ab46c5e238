"""The httpcore network backend that holds every download connection to the address policy.

Apart from :mod:`invoke_host.models.address_policy` because httpcore is imported only with a download's transport
(``policy_transport``), not on every start (docs/benchmarks.md, start-up): the policy itself is read at start.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import anyio
import httpcore

from invoke_host.models.address_policy import AddressPolicy, AsyncResolver, BlockedAddressError

__all__ = ["PolicyNetworkBackend"]


async def _resolve(host: str) -> list[str]:
    return [str(info[4][0]) for info in await anyio.getaddrinfo(host, None)]



class PolicyNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, judges every answer, then connects to an allowed IP itself (TLS still verifies the host name).

    ``resolve`` (host -> addresses, repeats allowed) and ``inner`` (the backend that opens sockets) default to the real
    resolver and anyio; they are parameters so a test can give a host name any DNS answer it needs.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolve: AsyncResolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self._resolve = resolve or _resolve
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = list(dict.fromkeys(await self._resolve(host)))
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        allowed, refused = self.policy.allowed(addresses)
        if not allowed:
            raise BlockedAddressError(f"refusing to connect to {host}: {'; '.join(refused) or 'no address'}")
        failures: list[str] = []
        for address in allowed:  # never the name: it could resolve differently a second time
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failures.append(f"{address} ({type(exc).__name__}: {exc})")
        raise httpcore.ConnectError(f"could not connect to {host} on port {port}: {'; '.join(failures)}")

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError("unix sockets are not used for downloads")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
