"""The exception a node raises when it stops because the user canceled the run."""

from __future__ import annotations

__all__ = ["InvocationCanceledError"]


class InvocationCanceledError(Exception):
    """Raised by a node that saw ``context.util.is_canceled()`` and stopped early.

    The engine treats it as a cancellation, not as a node error.
    """
