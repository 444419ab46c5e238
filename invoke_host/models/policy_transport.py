"""An httpx transport whose every connection goes through the address policy.

httpx offers no public way to hand its own transport a network backend, so this transport owns an
httpcore connection pool built with :class:`PolicyNetworkBackend` and speaks httpx's public
transport interface (:class:`httpx.AsyncBaseTransport`). The client above it still does redirects
(dropping ``Authorization`` on a hop to another origin), cookies and timeouts.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator

import certifi
import httpcore
import httpx

from invoke_host.models.address_policy import AddressPolicy
from invoke_host.models.policy_network_backend import PolicyNetworkBackend

__all__ = ["PolicyTransport"]

# Most specific first: the first match is the httpx error raised.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.ProxyError, httpx.ProxyError),
)


@contextlib.contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core, public in _ERRORS:
            if isinstance(exc, core):
                raise public(str(exc), request=request) from exc
        raise


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: httpcore.Response, request: httpx.Request) -> None:
        self._response = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors(self._request):
            async for part in self._response.aiter_stream():
                yield part

    async def aclose(self) -> None:
        await self._response.aclose()


class PolicyTransport(httpx.AsyncBaseTransport):
    """http(s) only, each connection to an address :class:`AddressPolicy` allows (``backend`` overrides it)."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        backend: httpcore.AsyncNetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,
        retries: int = 2,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(cafile=certifi.where()),
            network_backend=backend or PolicyNetworkBackend(policy),
            retries=retries,  # connection attempts only; a request is never sent twice
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"only http and https can be used, not {request.url.scheme!r}")
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors(request):
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response, request),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
