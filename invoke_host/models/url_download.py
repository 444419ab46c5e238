"""Downloading one model file over http(s): address policy on every hop, resume with Range, verification.

The file is written as ``<name>.part`` inside the job's own folder and renamed when complete; the
caller deletes the folder on any failure, so nothing partial is ever left in the models directory.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import certifi
import httpcore
import httpx

from invoke_host.models.address_policy import AddressPolicy, PolicyNetworkBackend
from invoke_host.models.filenames import safe_filename

__all__ = ["DownloadError", "download_url", "policy_client"]

_MAX_REDIRECTS = 10
_MAX_RESUMES = 3


class DownloadError(ValueError):
    """The URL did not give a complete model file; the message says what happened."""


def policy_client(policy: AddressPolicy, timeout: float = 30.0) -> httpx.AsyncClient:
    """An httpx client whose every connection goes through the address policy; redirects are ours to follow."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(  # the only way to give httpx a network backend
        ssl_context=ssl.create_default_context(cafile=certifi.where()),
        network_backend=PolicyNetworkBackend(policy),
    )
    return httpx.AsyncClient(transport=transport, follow_redirects=False, timeout=timeout, trust_env=False)


def _check_scheme(url: str) -> None:
    if urlsplit(url).scheme not in {"http", "https"}:
        raise DownloadError(f"only http and https URLs can be installed, not {url!r}")


def _filename(response: httpx.Response) -> str:
    disposition = response.headers.get("content-disposition")
    if disposition:
        msg = Message()
        msg["content-disposition"] = disposition
        name = msg.get_filename()
        if name:
            return safe_filename(name)
    return safe_filename(unquote(urlsplit(str(response.url)).path.rsplit("/", 1)[-1]))


async def _open(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> tuple[httpx.Response, str]:
    """Send GET, following redirects by hand so each hop's scheme is checked (and its address, by the client)."""
    for _ in range(_MAX_REDIRECTS + 1):
        _check_scheme(url)
        request = client.build_request("GET", url, headers=headers)
        response = await client.send(request, stream=True)
        if response.is_redirect and "location" in response.headers:
            await response.aclose()
            url = urljoin(url, response.headers["location"])
            continue
        return response, url
    raise DownloadError(f"more than {_MAX_REDIRECTS} redirects")


async def download_url(
    url: str,
    folder: Path,
    *,
    policy: AddressPolicy,
    headers: dict[str, str] | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download ``url`` into ``folder`` and return the file; raise :class:`DownloadError` on a bad answer.

    A transfer that breaks off is resumed with a ``Range`` request when the server advertises
    ``Accept-Ranges: bytes``; otherwise, and when the final size does not match, it fails.
    """
    headers = dict(headers or {})
    written = 0
    target: Path | None = None
    total: int | None = None
    async with policy_client(policy) as client:
        for attempt in range(_MAX_RESUMES + 1):
            request_headers = dict(headers)
            if written:
                request_headers["Range"] = f"bytes={written}-"
            try:
                response, final_url = await _open(client, url, request_headers)
            except httpx.HTTPError as exc:
                raise DownloadError(f"could not reach {url}: {exc}") from exc
            try:
                if response.status_code == 404:
                    raise DownloadError(f"{final_url} answered 404 Not Found")
                if written and response.status_code == 200:
                    written = 0  # the server ignored the range: start over
                elif response.status_code not in (200, 206):
                    raise DownloadError(f"{final_url} answered {response.status_code} {response.reason_phrase}")
                content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if content_type in {"text/html", "application/xhtml+xml"}:
                    raise DownloadError(f"{final_url} returned an HTML page, not a model file (a login or error page?)")
                if target is None:
                    target = folder / _filename(response)
                length = response.headers.get("content-length")
                if response.status_code == 200:
                    total = int(length) if length and length.isdigit() else None
                resumable = response.headers.get("accept-ranges", "").lower() == "bytes"
                part = target.with_name(target.name + ".part")
                with part.open("ab" if written else "wb") as fh:
                    try:
                        # Unbuffered: bytes received before a break-off are kept for the resume.
                        async for chunk in response.aiter_raw():
                            await asyncio.to_thread(fh.write, chunk)
                            written += len(chunk)
                            if on_progress is not None:
                                on_progress(written, total)
                    except httpx.TransportError as exc:
                        if resumable and attempt < _MAX_RESUMES:
                            continue
                        raise DownloadError(
                            f"the transfer from {final_url} broke off after {written} bytes ({exc})"
                        ) from exc
            finally:
                await response.aclose()
            if total is not None and written != total:
                if resumable and written < total and attempt < _MAX_RESUMES:
                    continue
                raise DownloadError(f"the transfer from {final_url} is incomplete: {written} of {total} bytes")
            if written == 0:
                raise DownloadError(f"{final_url} returned an empty file")
            part.rename(target)
            return target
    raise DownloadError(f"the transfer from {url} broke off {_MAX_RESUMES} times")
