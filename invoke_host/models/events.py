"""Install and download events, emitted from this one place onto the host's event bus.

The events are typed (:mod:`invoke_sdk.models.install_events`); progress (download and hashing) is sent at
most once per percent of the total, so a multi-GB model makes about a hundred events, not millions.
Call these from the event loop; hashing progress arrives from a worker thread and is handed over
with :meth:`InstallEvents.hashing_progress_threadsafe`.
"""

from __future__ import annotations

import asyncio
import logging

from invoke_sdk.events import BaseEvent
from invoke_sdk.models.install import InstallJob
from invoke_sdk.models.install_events import (
    ModelInstallCancelledEvent,
    ModelInstallCompleteEvent,
    ModelInstallDownloadProgressEvent,
    ModelInstallDownloadsCompleteEvent,
    ModelInstallDownloadStartedEvent,
    ModelInstallErrorEvent,
    ModelInstallHashingProgressEvent,
    ModelInstallStartedEvent,
)

from invoke_host.events.bus import EventBus

__all__ = ["InstallEvents"]

logger = logging.getLogger("invoke_host.models")


def _percent(done: int, total: int) -> int:
    return min(100, done * 100 // total)


class InstallEvents:
    """Emits the ``model_install_*`` events of every job on ``bus`` (none when there is no bus)."""

    def __init__(self, bus: EventBus | None = None) -> None:
        self.bus = bus
        self._download_percent: dict[int, int] = {}
        self._hash_percent: dict[int, int] = {}

    def _emit(self, event: BaseEvent) -> None:
        if self.bus is not None:
            self.bus.emit(event)

    def _forget(self, job: InstallJob) -> None:
        self._download_percent.pop(job.id, None)
        self._hash_percent.pop(job.id, None)

    def started(self, job: InstallJob) -> None:
        logger.info("Install %d started: %s", job.id, job.source)
        self._emit(ModelInstallStartedEvent.build(job))

    def download_started(self, job: InstallJob) -> None:
        self._emit(ModelInstallDownloadStartedEvent.build(job))

    def download_progress(self, job: InstallJob) -> None:
        if not job.total_bytes:
            return
        percent = _percent(job.bytes, job.total_bytes)
        if percent <= self._download_percent.get(job.id, -1):
            return
        self._download_percent[job.id] = percent
        self._emit(ModelInstallDownloadProgressEvent.build(job))

    def downloads_complete(self, job: InstallJob) -> None:
        logger.info("Install %d downloaded %d bytes from %s", job.id, job.bytes, job.source)
        self._emit(ModelInstallDownloadsCompleteEvent.build(job))

    def hashing_progress(self, job: InstallJob, hashed: int, total: int) -> None:
        if not total:
            return
        percent = _percent(hashed, total)
        if percent <= self._hash_percent.get(job.id, -1):
            return
        self._hash_percent[job.id] = percent
        self._emit(ModelInstallHashingProgressEvent.build(job, hashed, total))

    def hashing_progress_threadsafe(
        self, loop: asyncio.AbstractEventLoop, job: InstallJob, hashed: int, total: int
    ) -> None:
        """:meth:`hashing_progress` from the hashing thread: the percent bookkeeping stays on the loop."""
        loop.call_soon_threadsafe(self.hashing_progress, job, hashed, total)

    def completed(self, job: InstallJob) -> None:
        self._forget(job)
        logger.info("Install %d of %s completed: model %s", job.id, job.source, (job.config_out or {}).get("key"))
        self._emit(ModelInstallCompleteEvent.build(job))

    def error(self, job: InstallJob) -> None:
        self._forget(job)
        logger.warning("Install %d of %s failed: %s: %s", job.id, job.source, job.error_type, job.error)
        self._emit(ModelInstallErrorEvent.build(job))

    def cancelled(self, job: InstallJob) -> None:
        self._forget(job)
        logger.info("Install %d of %s cancelled", job.id, job.source)
        self._emit(ModelInstallCancelledEvent.build(job))
