"""The download cache behind ``context.models.download_and_cache_model``: files a node fetches by URL or repo.

Nothing here is a model record: a node asks for a source, gets a local path, and the next node that asks for the
same source (and revision) gets the same path without any network access. Layout, under ``<models>/.download_cache``::

    <key>/entry.json      what the entry holds (source, revision, the path inside content/, bytes, blake3 hash)
    <key>/content/...     the downloaded file or repo files

``<key>`` is a hash of the source (:mod:`.cache_sources`), never outside text. An entry is built in its own folder
under ``<models>/.tmp`` (cleared at start) and renamed into place whole, so an entry either is complete or is not
there: a failed, refused or canceled download leaves nothing in the cache. Downloads go through the same code and
rules as installs: the address policy on every hop, the size and time limits, resumes, the Hugging Face token
(``HF_TOKEN``; sent only to the hub, never logged).

One download per source at a time in a process: a second node asking for a source that is being fetched waits for
it (still honouring its own cancel) and then takes the finished entry. Between processes sharing the folder the
rename decides: the first complete entry stays, a later one is discarded.

The cache is bounded by ``max_download_cache_bytes``: before an entry is added, the least recently used entries
not in use are removed until it fits. An entry is in use while a run that was handed its path is still running
(:meth:`DownloadCache.pin` / :meth:`DownloadCache.release`); one larger than the bound, or one that cannot fit
because everything else is in use, is refused with an error naming the setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from invoke_host.models.address_policy import AddressPolicy, check_endpoint
from invoke_host.models.cache_sources import CacheSource, RepoSource, UrlSource, parse_cache_source
from invoke_host.models.download_limits import DownloadLimitError, DownloadLimits
from invoke_host.models.download_slots import DownloadSlots, SlotWaitCanceledError
from invoke_host.models.hashing import hash_model, model_size
from invoke_host.models.hf_source import (
    HFSource,
    InstallCancelledError,
    download_hf_file,
    download_hf_repo,
    list_hf_repo,
)
from invoke_host.models.url_download import download_url

__all__ = ["CachedDownload", "DownloadCache", "DownloadCanceledError"]

logger = logging.getLogger("invoke_host.models")

Progress = Callable[[int, int | None], None]
"""Called with (bytes received so far, total bytes or None when unknown)."""

_CANCEL_POLL_S = 0.1
_HUB = "https://huggingface.co"


class DownloadCanceledError(Exception):
    """The run that asked for the download was canceled; nothing was kept."""


@dataclass(frozen=True)
class CachedDownload:
    """A complete cache entry: its key (for :meth:`DownloadCache.pin`) and the local path of what it holds."""

    key: str
    path: Path
    source: str
    downloaded: bool
    """Whether this call downloaded it (False: it was in the cache already)."""


class DownloadCache:
    """The folder of downloaded files, its size bound and the lock of each source being fetched.

    ``slots`` are the host's download slots, shared with installs: a download holds one while it transfers, so
    nodes and installs together run at most ``download_concurrency`` downloads (None: no bound of its own).
    """

    def __init__(
        self,
        folder: Path,
        staging: Path,
        *,
        policy: AddressPolicy,
        limits: DownloadLimits,
        max_bytes: int,
        slots: DownloadSlots | None = None,
    ) -> None:
        self.folder = folder
        self.slots = slots
        self.staging = staging
        self.policy = policy
        self.max_bytes = max_bytes
        # One download may fill the cache but no more: the tighter bound is the one its errors name.
        self.limits = (
            replace(limits, max_bytes=max_bytes, size_setting="max_download_cache_bytes")
            if max_bytes < limits.max_bytes else limits
        )
        self._guard = threading.Lock()
        self._fetching: dict[str, threading.Lock] = {}
        self._pins: Counter[str] = Counter()
        # The order of use in this process: file times are too coarse (a kernel tick) to order quick uses.
        self._uses = itertools.count(1)
        self._last_use: dict[str, int] = {}

    # -- asking for a source ----------------------------------------------------------------------

    def fetch(
        self,
        source: str,
        *,
        revision: str | None = None,
        cancelled: Callable[[], bool] = lambda: False,
        on_progress: Progress | None = None,
        pin: bool = False,
    ) -> CachedDownload:
        """The cache entry of ``source``, downloaded first if it is not cached (blocking: call it from a node).

        ``pin`` pins the entry (see :meth:`pin`) in the same step that finds it, so no eviction comes between.
        ``ValueError`` for a bad source or a failed download (:class:`DownloadLimitError` over a limit,
        ``BlockedAddressError`` for a refused address); :class:`DownloadCanceledError` once ``cancelled()``.
        """
        parsed = parse_cache_source(source, revision)
        found = self._hit(parsed.key, pin)
        if found is not None:
            return CachedDownload(parsed.key, found, str(parsed), downloaded=False)
        lock = self._lock_of(parsed.key)
        while not lock.acquire(timeout=_CANCEL_POLL_S):
            if cancelled():
                raise DownloadCanceledError(f"the download of {parsed} was canceled")
        try:
            found = self._hit(parsed.key, pin)  # fetched by the holder of the lock meanwhile
            if found is not None:
                return CachedDownload(parsed.key, found, str(parsed), downloaded=False)
            path = self._download(parsed, cancelled, on_progress, pin)
            return CachedDownload(parsed.key, path, str(parsed), downloaded=True)
        finally:
            lock.release()

    def pin(self, key: str) -> None:
        """Keep an entry from eviction until :meth:`release` (a run was handed its path)."""
        with self._guard:
            self._pins[key] += 1

    def release(self, key: str) -> None:
        """Undo one :meth:`pin`."""
        with self._guard:
            self._pins[key] -= 1
            if self._pins[key] <= 0:
                del self._pins[key]

    def used_bytes(self) -> int:
        """Bytes the complete entries hold (as their ``entry.json`` files record)."""
        return sum(size for _, size, _ in self._entries())

    # -- entries ----------------------------------------------------------------------------------

    def _lock_of(self, key: str) -> threading.Lock:
        with self._guard:
            lock = self._fetching.get(key)
            if lock is None:
                lock = self._fetching[key] = threading.Lock()
            return lock

    def _hit(self, key: str, pin: bool) -> Path | None:
        with self._guard:
            found = self._entry(key)
            if found is not None and pin:
                self._pins[key] += 1
            return found

    def _entry(self, key: str) -> Path | None:
        """The path a complete entry holds (its last use noted for the LRU order), or None."""
        folder = self.folder / key
        manifest = folder / "entry.json"
        try:
            recorded = json.loads(manifest.read_text())
            path = (folder / "content" / str(recorded["path"])).resolve()
        except (OSError, ValueError, KeyError, TypeError):
            return None
        content = (folder / "content").resolve()
        if not (path == content or path.is_relative_to(content)) or not path.exists():
            logger.warning("Download cache entry %s is damaged (%s); it is downloaded again", key, manifest)
            shutil.rmtree(folder, ignore_errors=True)
            return None
        with contextlib.suppress(OSError):
            os.utime(manifest)  # the order of use for the next process
        self._last_use[key] = next(self._uses)
        return path

    def _entries(self) -> list[tuple[str, int, float]]:
        """(key, bytes, last use) of every complete entry, least recently used first: those this process has not
        used, by file time, then those it has, in the order it used them."""
        found: list[tuple[str, int, float]] = []
        if not self.folder.is_dir():
            return found
        for folder in self.folder.iterdir():
            manifest = folder / "entry.json"
            try:
                size = int(json.loads(manifest.read_text())["bytes"])
                used = manifest.stat().st_mtime
            except (OSError, ValueError, KeyError, TypeError):
                continue
            found.append((folder.name, size, used))
        return sorted(found, key=lambda entry: (self._last_use.get(entry[0], 0), entry[2]))

    def _make_room(self, key: str, size: int, source: CacheSource) -> None:
        """Evict least recently used entries not in use until ``size`` more bytes fit (called under ``_guard``)."""
        setting = f"max_download_cache_bytes (INVOKE_HOST_MAX_DOWNLOAD_CACHE_BYTES={self.max_bytes})"
        if size > self.max_bytes:
            raise DownloadLimitError(f"{source} is {size} bytes, more than {setting}; nothing was kept")
        entries = self._entries()
        used = sum(entry_size for _, entry_size, _ in entries)
        for victim, victim_size, _ in entries:
            if used + size <= self.max_bytes:
                break
            if self._pins.get(victim) or victim == key:
                continue
            shutil.rmtree(self.folder / victim, ignore_errors=True)
            self._last_use.pop(victim, None)
            used -= victim_size
            logger.info("Removed %s (%d bytes) from the download cache, least recently used", victim, victim_size)
        if used + size > self.max_bytes:
            raise DownloadLimitError(
                f"{source} ({size} bytes) does not fit in the download cache: the entries in use hold {used} of "
                f"{setting} bytes; raise the setting or run the nodes that use them apart; nothing was kept"
            )

    # -- downloading ------------------------------------------------------------------------------

    def _download(
        self, source: CacheSource, cancelled: Callable[[], bool], on_progress: Progress | None, pin: bool
    ) -> Path:
        self.staging.mkdir(parents=True, exist_ok=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"download-{source.key[:12]}-", dir=self.staging))
        try:
            content = work / "content"
            content.mkdir()
            # One of the host's download slots for the transfer (waiting for it honours the run's cancel).
            with self.slots.hold(cancelled) if self.slots is not None else contextlib.nullcontext():
                logger.info("Downloading %s into the download cache", source)
                if isinstance(source, UrlSource):
                    path = self._download_url(source, content, cancelled, on_progress)
                else:
                    path = self._download_repo(source, content, cancelled, on_progress)
            if cancelled():
                raise DownloadCanceledError(f"the download of {source} was canceled")
            real, inside = path.resolve(), content.resolve()
            if not (real == inside or real.is_relative_to(inside)):
                raise ValueError(f"the download of {source} named a path outside its folder ({path}); refused")
            size = model_size(path)
            manifest = {
                "source": str(source),
                "path": real.relative_to(inside).as_posix() if real != inside else ".",
                "bytes": size,
                "hash": hash_model(path),
            }
            (work / "entry.json").write_text(json.dumps(manifest))
            target = self.folder / source.key
            with self._guard:
                self._make_room(source.key, size, source)
                try:
                    os.rename(work, target)
                except OSError:
                    if self._entry(source.key) is None:
                        raise
                    logger.info("Another process cached %s first: its copy is kept", source)
                found = self._entry(source.key)
                if found is None:
                    raise ValueError(f"the download cache entry of {source} vanished as it was added")
                if pin:
                    self._pins[source.key] += 1
            logger.info("Cached %s (%d bytes) as %s", source, size, target)
            return found
        except (InstallCancelledError, SlotWaitCanceledError):
            raise DownloadCanceledError(f"the download of {source} was canceled") from None
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _download_url(
        self, source: UrlSource, folder: Path, cancelled: Callable[[], bool], on_progress: Progress | None
    ) -> Path:
        headers: dict[str, str] = {}
        token = os.environ.get("HF_TOKEN")
        if token and _host(source.url) == _host(os.environ.get("HF_ENDPOINT") or _HUB):
            # The hub's own files (a "resolve" URL of a gated repo); httpx drops it on a hop to another host.
            headers["Authorization"] = f"Bearer {token}"

        async def download() -> Path:
            task = asyncio.ensure_future(download_url(
                source.url, folder, policy=self.policy, limits=self.limits, headers=headers, on_progress=on_progress
            ))
            while True:
                done, _ = await asyncio.wait([task], timeout=_CANCEL_POLL_S)
                if done:
                    return task.result()
                if cancelled():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task  # download_url removes its part file as it unwinds
                    raise DownloadCanceledError(f"the download of {source} was canceled")

        # A node runs in a worker thread with no event loop of its own: the download gets one for its duration.
        return asyncio.run(download())

    def _download_repo(
        self, source: RepoSource, folder: Path, cancelled: Callable[[], bool], on_progress: Progress | None
    ) -> Path:
        endpoint = os.environ.get("HF_ENDPOINT") or None
        if endpoint:
            # huggingface_hub connects with its own client: judge the configured hub before it does.
            check_endpoint(endpoint, self.policy, what="Hugging Face endpoint (HF_ENDPOINT)")
        received = [0]
        total: list[int | None] = [None]

        def on_bytes(n: int) -> None:
            received[0] += n
            if on_progress is not None:
                on_progress(received[0], total[0])

        def on_total(size: int) -> None:
            total[0] = size

        # token=None: huggingface_hub takes HF_TOKEN (or its stored login) itself and sends it only to the hub.
        sha, sizes = list_hf_repo(source.repo_id, token=None, endpoint=endpoint, revision=source.revision)
        if source.path is not None and source.path in sizes:
            on_total(sizes[source.path])
            return download_hf_file(
                source.repo_id, source.path, folder, sha=sha, size=sizes[source.path], token=None,
                on_bytes=on_bytes, cancelled=cancelled, endpoint=endpoint, limits=self.limits,
            )
        return download_hf_repo(
            HFSource(source.repo_id, source.path), folder, variant=source.variant, token=None, on_total=on_total,
            on_bytes=on_bytes, cancelled=cancelled, endpoint=endpoint, limits=self.limits,
            revision=sha or source.revision,
        )


def _host(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.hostname else None
