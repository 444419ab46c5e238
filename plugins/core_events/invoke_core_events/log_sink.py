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


class LogSink:
    """Logs events: per-node events at DEBUG (a graph has thousands), errors at WARNING, the rest at INFO."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("invoke_host.events")

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
