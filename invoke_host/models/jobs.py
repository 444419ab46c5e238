"""Install jobs (the models live in the SDK, :mod:`invoke_sdk.models.install`, so events can carry them)."""

from __future__ import annotations

from invoke_sdk.models.install import InstallJob, InstallStatus

__all__ = ["InstallJob", "InstallStatus"]
