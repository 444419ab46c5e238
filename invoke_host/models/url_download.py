"""Downloading one model file over http(s): address policy on every hop, limits, resume with Range.

httpx follows the redirects (and, like a browser, drops ``Authorization`` on a hop to another
origin); every connection, first hop or later, goes through :class:`PolicyTransport`. A transfer
that breaks off is resumed here with ``Range``. The file is written as ``<name>.part`` inside the
job's own folder and renamed when complete; on any failure the part file is removed here, and the
caller deletes the folder too, so nothing partial is ever left in the models directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from invoke_host.models.address_policy import AddressPolicy
from invoke_host.models.download_limits import DownloadLimits
from invoke_host.models.filenames import safe_filename

if TYPE_CHECKING:
    import httpx

__all__ = ["DownloadError", "download_url", "policy_client"]

_MAX_REDIRECTS = 10
_MAX_RESUMES = 3
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


class DownloadError(ValueError):
    """The URL did not give a complete model file; the message says what happened."""


def policy_client(
    policy: AddressPolicy,
    limits: DownloadLimits | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An httpx client whose every connection goes through the address policy; it follows redirects itself.

    Each network wait (connect, each read, each write) may last ``stall_timeout_s``.
    """
    # Imported here, not at the top: `import httpx` always loads its command-line module (rich, pygments),
    # about 0.3 s that every start-up paid for a download it may never make (bench/startup_cpu.py).
    import httpx

    from invoke_host.models.policy_transport import PolicyTransport

    limits = limits or DownloadLimits()
    return httpx.AsyncClient(
        transport=transport or PolicyTransport(policy),
        follow_redirects=True,
        max_redirects=_MAX_REDIRECTS,
        timeout=httpx.Timeout(limits.stall_timeout_s),
        trust_env=False,  # no proxy from the environment: the policy must judge the real peer
    )


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
    return safe_filename(response.url.path)  # decoded; safe_filename keeps the last component


def _declared_length(response: httpx.Response) -> int | None:
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() else None


async def download_url(
    url: str,
    folder: Path,
    *,
    policy: AddressPolicy,
    limits: DownloadLimits | None = None,
    headers: dict[str, str] | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Path:
    """Download ``url`` into ``folder`` and return the file; raise :class:`DownloadError` on a bad answer
    (:class:`~invoke_host.models.download_limits.DownloadLimitError` when over a limit).

    A transfer that breaks off or stalls is resumed with a ``Range`` request when the server advertises
    ``Accept-Ranges: bytes``; otherwise, and when the final size does not match, it fails. The whole
    download, redirects and resumes included, must end within ``limits.timeout_s``.
    """
    limits = limits or DownloadLimits()
    _check_scheme(url)
    # Raw bytes are stored: a compressed transfer would be saved compressed, and its length would not be the file's.
    base_headers = {**(headers or {}), "Accept-Encoding": "identity"}
    try:
        async with asyncio.timeout(limits.timeout_s):
            return await _download(url, folder, limits, policy, base_headers, on_progress, transport)
    except TimeoutError:
        _remove_parts(folder)
        raise limits.too_slow(f"the download from {url}") from None
    except BaseException:
        _remove_parts(folder)
        raise


def _remove_parts(folder: Path) -> None:
    for leftover in folder.glob("*.part"):
        with contextlib.suppress(OSError):
            leftover.unlink()


async def _download(
    url: str,
    folder: Path,
    limits: DownloadLimits,
    policy: AddressPolicy,
    headers: dict[str, str],
    on_progress: Callable[[int, int | None], None] | None,
    transport: httpx.AsyncBaseTransport | None,
) -> Path:
    import httpx  # kept off start-up, as in policy_client

    written = 0
    target: Path | None = None
    total: int | None = None
    async with policy_client(policy, limits, transport=transport) as client:
        for attempt in range(_MAX_RESUMES + 1):
            request_headers = dict(headers)
            if written:
                request_headers["Range"] = f"bytes={written}-"
            try:
                response = await client.send(client.build_request("GET", url, headers=request_headers), stream=True)
            except httpx.TooManyRedirects as exc:
                raise DownloadError(f"{url} redirected more than {_MAX_REDIRECTS} times") from exc
            except httpx.UnsupportedProtocol as exc:
                raise DownloadError(f"{url} redirected to a URL that is not http(s): {exc}") from exc
            except httpx.TimeoutException as exc:
                raise limits.stalled(url) from exc
            except httpx.HTTPError as exc:
                raise DownloadError(f"could not reach {url}: {exc}") from exc
            final_url = str(response.url)
            try:
                if written and response.status_code == 200:
                    written = 0  # the server ignored the range: start over
                elif response.status_code not in (200, 206):
                    raise DownloadError(f"{final_url} answered {response.status_code} {response.reason_phrase}")
                content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if content_type in {"text/html", "application/xhtml+xml"}:
                    raise DownloadError(f"{final_url} returned an HTML page, not a model file (a login or error page?)")
                if target is None:
                    target = folder / _filename(response)
                if response.status_code == 200:
                    total = _declared_length(response)
                else:
                    total = _check_range(response, final_url, written, total)
                # A body that grows past its declared size is cut off below, by the byte.
                if total is not None and total > limits.max_bytes:
                    raise limits.too_large(f"the file at {final_url}", total)
                resumable = response.headers.get("accept-ranges", "").lower() == "bytes"
                part = target.with_name(target.name + ".part")
                with part.open("ab" if written else "wb") as fh:
                    try:
                        # Unbuffered: bytes received before a break-off are kept for the resume.
                        async for chunk in response.aiter_raw():
                            if written + len(chunk) > limits.max_bytes:
                                raise limits.grew_too_large(final_url)
                            await asyncio.to_thread(fh.write, chunk)
                            written += len(chunk)
                            if on_progress is not None:
                                on_progress(written, total)
                    except httpx.TransportError as exc:
                        if resumable and attempt < _MAX_RESUMES:
                            continue
                        if isinstance(exc, httpx.TimeoutException):
                            raise limits.stalled(final_url) from exc
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
    raise AssertionError  # the last attempt returns or raises


def _check_range(response: httpx.Response, url: str, written: int, total: int | None) -> int | None:
    """The file's full size from a 206 answer, after checking it continues exactly where the file stops."""
    match = _CONTENT_RANGE.match(response.headers.get("content-range", "").strip())
    if match is None or int(match.group(1)) != written:
        raise DownloadError(
            f"{url} answered the resume from byte {written} with the wrong range "
            f"({response.headers.get('content-range')!r})"
        )
    return total if match.group(3) == "*" else int(match.group(3))
