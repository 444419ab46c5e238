"""A sink that writes events to the ``invoke_host.events`` log, in words: each item's, batch's and install's.

A node's own events (started, complete, progress) are never logged, at any level: a graph has thousands of nodes
(an iterate over 100,000 items made 400,000 lines at DEBUG, and building and formatting them held the event loop
for 50 s, long enough for the item to lose its lease: docs/benchmarks.md), and a step's progress carries its
preview image. What a run did is logged per item in words instead (the session processor's lines: started,
completed with its node count and time, and at DEBUG the nodes that ran by type); a node that fails is logged
with its error at WARNING.
"""

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

_NODE_EVENTS = frozenset(cls.event_name for cls in (
    InvocationProgressEvent, InvocationStartedEvent, InvocationCompleteEvent,
))
"""Per node: never logged (the module says why)."""


def _least_level(event_name: str) -> int | None:
    """The lowest level :meth:`LogSink.deliver` logs an event of this name at (a failed status is WARNING); None:
    never logged."""
    if event_name in _NODE_EVENTS:
        return None
    # A batch's enqueue (the queue logs it in words at INFO) and an install's percent steps (at most 100 a job).
    if event_name == BatchEnqueuedEvent.event_name or event_name.endswith("_progress"):
        return logging.DEBUG
    if event_name == InvocationErrorEvent.event_name:
        return logging.WARNING
    return logging.INFO


class LogSink:
    """Logs events: errors at WARNING, a batch's enqueue and an install's percent steps at DEBUG, the rest at INFO;
    a node's own events never."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("invoke_host.events")

    def wants(self, event_name: str) -> bool:
        """Whether the log shows events of this name at its level (a node's own events: never)."""
        level = _least_level(event_name)
        return level is not None and self.logger.isEnabledFor(level)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def deliver(self, event: BaseEvent) -> None:
        level = _least_level(event.event_name)
        if isinstance(event, QueueItemStatusChangedEvent) and event.status == "failed":
            level = logging.WARNING
        if level is None or not self.logger.isEnabledFor(level):
            return
        where = ""
        if isinstance(event, QueueItemEventBase):
            where = f" (queue {event.queue_id}, item {event.item_id})"
        elif room := event.room():
            where = f" ({room})"
        details = event.model_dump(exclude={"timestamp", "invocation", "result"})
        self.logger.log(level, "Event %s%s: %s", event.event_name, where, details)
