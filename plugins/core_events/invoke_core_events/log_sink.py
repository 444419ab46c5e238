"""A sink that writes every event to the ``invoke_host.events`` log, in words."""

from __future__ import annotations

import logging

from invoke_sdk.events import (
    BaseEvent,
    BatchEnqueuedEvent,
    InvocationCompleteEvent,
    InvocationErrorEvent,
    InvocationProgressEvent,
    InvocationStartedEvent,
    QueueItemEventBase,
    QueueItemStatusChangedEvent,
)

__all__ = ["LogSink"]

_DEBUG_EVENTS = frozenset(cls.event_name for cls in (
    InvocationProgressEvent, InvocationStartedEvent, InvocationCompleteEvent, BatchEnqueuedEvent,
))


def _least_level(event_name: str) -> int:
    """The lowest level :meth:`LogSink.deliver` logs an event of this name at (a failed status is WARNING)."""
    if event_name in _DEBUG_EVENTS or event_name.endswith("_progress"):
        return logging.DEBUG
    if event_name == InvocationErrorEvent.event_name:
        return logging.WARNING
    return logging.INFO


class LogSink:
    """Logs events: per-node events at DEBUG (a graph has thousands), errors at WARNING, the rest at INFO."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("invoke_host.events")

    def wants(self, event_name: str) -> bool:
        """Whether the log shows events of this name at its level (per-node events only at DEBUG)."""
        return self.logger.isEnabledFor(_least_level(event_name))

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def deliver(self, event: BaseEvent) -> None:
        level = logging.INFO
        # The queue service already logs each enqueue in words.
        if isinstance(
            event, InvocationProgressEvent | InvocationStartedEvent | InvocationCompleteEvent | BatchEnqueuedEvent
        ) or event.event_name.endswith("_progress"):
            # Progress (node steps, download and hashing percent) comes by the hundred: not for the INFO log.
            level = logging.DEBUG
        elif isinstance(event, InvocationErrorEvent) or (
            isinstance(event, QueueItemStatusChangedEvent) and event.status == "failed"
        ):
            level = logging.WARNING
        if not self.logger.isEnabledFor(level):
            return
        where = ""
        if isinstance(event, QueueItemEventBase):
            where = f" (queue {event.queue_id}, item {event.item_id})"
        elif room := event.room():
            where = f" ({room})"
        details = event.model_dump(exclude={"timestamp", "invocation", "result"})
        self.logger.log(level, "Event %s%s: %s", event.event_name, where, details)
