"""Install and download events, emitted from this one place.

The typed event system is built elsewhere; until it lands, events go to listeners registered here
as ``(name, payload)`` callbacks, and to the log. Switching to typed events means changing this
module only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from invoke_host.models.jobs import InstallJob

__all__ = ["InstallEvents", "Listener"]

logger = logging.getLogger("invoke_host.models")

Listener = Callable[[str, dict[str, Any]], None]


class InstallEvents:
    """Emits ``model_install_*`` events; progress at most once per percent of the total."""

    def __init__(self) -> None:
        self.listeners: list[Listener] = []
        self._last_percent: dict[int, int] = {}

    def _emit(self, name: str, job: InstallJob, **extra: Any) -> None:
        payload = {"id": job.id, "source": job.source, "status": job.status.value, **extra}
        for listener in list(self.listeners):
            try:
                listener(name, payload)
            except Exception:
                logger.exception("An install event listener failed on %s", name)

    def started(self, job: InstallJob) -> None:
        logger.info("Install %d started: %s", job.id, job.source)
        self._emit("model_install_started", job)

    def download_started(self, job: InstallJob) -> None:
        self._emit("model_install_download_started", job)

    def download_progress(self, job: InstallJob) -> None:
        if not job.total_bytes:
            return
        percent = min(100, job.bytes * 100 // job.total_bytes)
        if percent <= self._last_percent.get(job.id, -1):
            return
        self._last_percent[job.id] = percent
        self._emit("model_install_download_progress", job, bytes=job.bytes, total_bytes=job.total_bytes)

    def download_complete(self, job: InstallJob) -> None:
        self._emit("model_install_download_complete", job, bytes=job.bytes)

    def completed(self, job: InstallJob) -> None:
        self._last_percent.pop(job.id, None)
        key = (job.config_out or {}).get("key")
        logger.info("Install %d of %s completed: model %s", job.id, job.source, key)
        self._emit("model_install_complete", job, key=key)

    def error(self, job: InstallJob) -> None:
        self._last_percent.pop(job.id, None)
        logger.warning("Install %d of %s failed: %s: %s", job.id, job.source, job.error_type, job.error)
        self._emit("model_install_error", job, error_type=job.error_type, error=job.error)

    def cancelled(self, job: InstallJob) -> None:
        self._last_percent.pop(job.id, None)
        logger.info("Install %d of %s cancelled", job.id, job.source)
        self._emit("model_install_cancelled", job)
