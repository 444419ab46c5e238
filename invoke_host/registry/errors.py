"""The one error the registry raises when it refuses a contribution."""

from __future__ import annotations

__all__ = ["RegistrationError"]


class RegistrationError(ValueError):
    """A contribution the registry refuses (a bad class, a conflict); the message says which and why."""
