"""InvokeAI's logger factory, on the standard library's logging (the host configures the handlers)."""

from __future__ import annotations

import logging

__all__ = ["InvokeAILogger"]


class InvokeAILogger:
    """``InvokeAILogger.get_logger(name)``: a logger under ``invokeai.`` that the host's log settings govern."""

    @classmethod
    def get_logger(cls, name: str = "InvokeAI", config: object = None) -> logging.Logger:
        return logging.getLogger(f"invokeai.{name}")

    getLogger = get_logger  # noqa: N815 - InvokeAI 3.x's spelling
