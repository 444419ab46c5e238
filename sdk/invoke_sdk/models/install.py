"""Model install jobs: what a caller, an event or a sink sees of an install while it runs and after it ends."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["InstallJob", "InstallStatus"]


class InstallStatus(StrEnum):
    """Where an install job stands; the last three are final."""

    Waiting = "waiting"
    Downloading = "downloading"
    Running = "running"
    Completed = "completed"
    Error = "error"
    Cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether the job has ended (completed, error or cancelled)."""
        return self in {InstallStatus.Completed, InstallStatus.Error, InstallStatus.Cancelled}


class InstallJob(BaseModel):
    """One install: its source, state, progress, and the final config or the error."""

    id: int
    source: str
    source_type: str = Field(description="path, url or hf_repo_id")
    inplace: bool
    variant: str | None = None
    subfolder: str | None = None
    config_overrides: dict[str, Any] = Field(default_factory=dict)
    status: InstallStatus = InstallStatus.Waiting
    bytes: int = 0
    total_bytes: int | None = None
    config_out: dict[str, Any] | None = None
    error_type: str | None = None
    error: str | None = None
