"""The in-process event bus: every emitted event goes to every sink, in order, on the event loop.

Nothing is stored: an event reaches the sinks that exist when it is emitted. A sink that raises
is logged and the others still get the event; the emitter never sees the failure.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

from invoke_sdk.events import BaseEvent, EventSink

__all__ = ["EventBus"]

logger = logging.getLogger("invoke_host.events")


class EventBus:
    """A Host service: starts the sinks, delivers events to them, stops them."""

    def __init__(self, sinks: Sequence[EventSink] = ()) -> None:
        self.sinks: list[EventSink] = list(sinks)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._started: list[EventSink] = []

    def sink(self, name: str) -> EventSink | None:
        """The sink of that name, if any."""
        return next((s for s in self.sinks if s.name == name), None)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        for sink in self.sinks:
            try:
                await sink.start()
            except Exception:
                logger.exception("Event sink %r failed to start; it will get no events", sink.name)
                continue
            self._started.append(sink)

    async def stop(self) -> None:
        started, self._started = self._started, []
        for sink in reversed(started):
            try:
                await sink.stop()
            except Exception:
                logger.exception("Event sink %r failed to stop", sink.name)
        self._loop = None

    def emit(self, event: BaseEvent) -> None:
        """Deliver ``event`` to every sink. Safe from any thread (node code runs in worker threads)."""
        loop = self._loop
        if loop is None:
            return  # not started (a CLI command, or shut down): nobody is listening
        if threading.get_ident() == self._loop_thread:
            self._dispatch(event)
        else:
            loop.call_soon_threadsafe(self._dispatch, event)

    def _dispatch(self, event: BaseEvent) -> None:
        for sink in self._started:
            try:
                sink.deliver(event)
            except Exception:
                logger.exception("Event sink %r failed on event %r; the other sinks still got it", sink.name,
                                 event.event_name)
