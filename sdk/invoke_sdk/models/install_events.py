"""Model install and download events (InvokeAI's names and payloads, so its clients feel at home).

An install goes ``model_install_started``, then for a URL or Hugging Face source
``model_install_download_started``, ``model_install_download_progress`` (at most once per percent),
``model_install_downloads_complete``; then ``model_install_hashing_progress`` while its content is
hashed (at most once per percent), and ends with exactly one of ``model_install_complete``,
``model_install_error`` or ``model_install_cancelled``. They go to every client (no room).

These classes are among the host's own events (:data:`invoke_sdk.events.CORE_EVENTS`).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from invoke_sdk.event_base import BaseEvent
from invoke_sdk.models.install import InstallJob

__all__ = [
    "MODEL_INSTALL_EVENTS",
    "ModelInstallCancelledEvent",
    "ModelInstallCompleteEvent",
    "ModelInstallDownloadProgressEvent",
    "ModelInstallDownloadStartedEvent",
    "ModelInstallDownloadsCompleteEvent",
    "ModelInstallErrorEvent",
    "ModelInstallEventBase",
    "ModelInstallHashingProgressEvent",
    "ModelInstallStartedEvent",
]


class ModelInstallEventBase(BaseEvent):
    """An event about one install job."""

    id: int = Field(description="The install job's id")
    source: str = Field(description="What is installed: a local path, an http(s) URL or a Hugging Face repo id")


class ModelInstallStartedEvent(ModelInstallEventBase):
    """An install job began working."""

    event_name: ClassVar[str] = "model_install_started"

    @classmethod
    def build(cls, job: InstallJob) -> ModelInstallStartedEvent:
        """The event for ``job`` starting."""
        return cls(id=job.id, source=job.source)


class ModelInstallDownloadStartedEvent(ModelInstallEventBase):
    """An install job began downloading (it held a download slot)."""

    event_name: ClassVar[str] = "model_install_download_started"

    bytes: int = Field(description="Bytes downloaded so far (more than 0 when a broken download resumes)")
    total_bytes: int | None = Field(description="Size of the whole download, when known")

    @classmethod
    def build(cls, job: InstallJob) -> ModelInstallDownloadStartedEvent:
        """The event for ``job`` starting its download."""
        return cls(id=job.id, source=job.source, bytes=job.bytes, total_bytes=job.total_bytes)


class ModelInstallDownloadProgressEvent(ModelInstallEventBase):
    """Bytes arrived; sent at most once per percent of the total."""

    event_name: ClassVar[str] = "model_install_download_progress"

    bytes: int = Field(description="Bytes downloaded so far")
    total_bytes: int = Field(description="Size of the whole download, all files together")

    @classmethod
    def build(cls, job: InstallJob) -> ModelInstallDownloadProgressEvent:
        """The event for ``job``'s download as it stands."""
        return cls(id=job.id, source=job.source, bytes=job.bytes, total_bytes=job.total_bytes or 0)


class ModelInstallDownloadsCompleteEvent(ModelInstallEventBase):
    """Every file of the job is downloaded; checking, probing and hashing come next."""

    event_name: ClassVar[str] = "model_install_downloads_complete"

    @classmethod
    def build(cls, job: InstallJob) -> ModelInstallDownloadsCompleteEvent:
        """The event for ``job`` having all its files."""
        return cls(id=job.id, source=job.source)


class ModelInstallHashingProgressEvent(ModelInstallEventBase):
    """The model's content is being hashed (its identity); sent at most once per percent."""

    event_name: ClassVar[str] = "model_install_hashing_progress"

    bytes: int = Field(description="Bytes hashed so far")
    total_bytes: int = Field(description="Bytes to hash, every weight file together")

    @classmethod
    def build(cls, job: InstallJob, hashed: int, total: int) -> ModelInstallHashingProgressEvent:
        """The event for ``job`` having hashed ``hashed`` of ``total`` bytes."""
        return cls(id=job.id, source=job.source, bytes=hashed, total_bytes=total)


class ModelInstallCompleteEvent(ModelInstallEventBase):
    """The model is installed and recorded."""

    event_name: ClassVar[str] = "model_install_complete"

    key: str = Field(description="The new model record's key")
    total_bytes: int | None = Field(description="Bytes downloaded (None for a local path)")

    @classmethod
    def build(cls, job: InstallJob) -> ModelInstallCompleteEvent:
        """The event for ``job`` having completed (its ``config_out`` holds the record)."""
        key = str((job.config_out or {}).get("key", ""))
        return cls(id=job.id, source=job.source, key=key, total_bytes=job.total_bytes)


class ModelInstallErrorEvent(ModelInstallEventBase):
    """The install failed; nothing of it was kept."""

    event_name: ClassVar[str] = "model_install_error"

    error_type: str = Field(description="The name of the error")
    error: str = Field(description="What went wrong, in words")

    @classmethod
    def build(cls, job: InstallJob) -> ModelInstallErrorEvent:
        """The event for ``job`` having failed."""
        return cls(id=job.id, source=job.source, error_type=job.error_type or "Error", error=job.error or "")


class ModelInstallCancelledEvent(ModelInstallEventBase):
    """The install was cancelled; nothing of it was kept."""

    event_name: ClassVar[str] = "model_install_cancelled"

    @classmethod
    def build(cls, job: InstallJob) -> ModelInstallCancelledEvent:
        """The event for ``job`` having been cancelled."""
        return cls(id=job.id, source=job.source)


MODEL_INSTALL_EVENTS: tuple[type[BaseEvent], ...] = (
    ModelInstallCancelledEvent,
    ModelInstallCompleteEvent,
    ModelInstallDownloadProgressEvent,
    ModelInstallDownloadStartedEvent,
    ModelInstallDownloadsCompleteEvent,
    ModelInstallErrorEvent,
    ModelInstallHashingProgressEvent,
    ModelInstallStartedEvent,
)
"""Every model install event; part of the host's own events."""
