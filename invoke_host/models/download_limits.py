"""How big and how slow a model download may be, and the errors that name the setting a user can raise."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DownloadLimitError", "DownloadLimits"]


class DownloadLimitError(ValueError):
    """A download went over one of the limits; the message names the setting."""


@dataclass(frozen=True)
class DownloadLimits:
    """The defaults match :class:`invoke_host.config.HostConfig`'s ``download_*`` settings."""

    max_bytes: int = 100 * 1024**3
    timeout_s: float = 6 * 3600.0
    stall_timeout_s: float = 60.0
    size_setting: str = "download_max_bytes"
    """The setting ``max_bytes`` comes from, named in the errors (the download cache's own bound may be lower)."""

    def _size_limit(self) -> str:
        return f"{self.size_setting} (INVOKE_HOST_{self.size_setting.upper()}={self.max_bytes})"

    def too_large(self, what: str, size: int) -> DownloadLimitError:
        return DownloadLimitError(f"{what} is {size} bytes, more than {self._size_limit()}; nothing was kept")

    def grew_too_large(self, what: str) -> DownloadLimitError:
        return DownloadLimitError(
            f"{what} sent more than {self._size_limit()} bytes; the transfer was stopped and nothing was kept"
        )

    def too_slow(self, what: str) -> DownloadLimitError:
        return DownloadLimitError(
            f"{what} did not finish within download_timeout_s (INVOKE_HOST_DOWNLOAD_TIMEOUT_S={self.timeout_s:g}) "
            "seconds; nothing was kept"
        )

    def stalled(self, what: str) -> DownloadLimitError:
        return DownloadLimitError(
            f"{what} sent nothing for download_stall_timeout_s "
            f"(INVOKE_HOST_DOWNLOAD_STALL_TIMEOUT_S={self.stall_timeout_s:g}) seconds; nothing was kept"
        )
