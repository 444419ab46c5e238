"""What the workflow library refuses: a status and a message a person can act on."""

from __future__ import annotations

from typing import Any

__all__ = ["WorkflowError"]


class WorkflowError(ValueError):
    """A request the library refuses; ``status_code``, a message, and the problems found (if any)."""

    def __init__(self, status_code: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.errors = errors or []
