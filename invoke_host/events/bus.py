"""The in-process event bus: every emitted event goes to every sink, in order, on the event loop.

Nothing is stored: an event reaches the sinks that exist when it is emitted. An emitter whose events cost
something to build asks :meth:`EventBus.wants` first, and builds nothing when no sink would use it. A sink that raises
is logged and the others still get the event; the emitter never sees the failure.

Events emitted from other threads (node code) are queued and handed to the loop in bursts: one
``call_soon_threadsafe`` (one wake-up of the loop) per burst, not per event, so a graph of fast
nodes does not flood the loop with wake-ups. Order is kept: an event emitted on the loop first
delivers the queued ones.

An emitter that writes its own wire message hands the bus an :class:`~invoke_sdk.events.EncodedEvent`
(:meth:`EventBus.emit_encoded`): sinks that take encoded events get it as it is, the others its typed model
(built once, when the first of them needs it), and a selective sink that does not want it gets nothing, so a
graph's per-node events cost the websocket sink's clients the encoding alone. :meth:`EventBus.wants_typed` tells the
emitter whether a sink will need the model, so that it builds it on its own thread, off the loop.

An event that came from another node (``emit(event, remote=True)``, called by a relay sink through its
:class:`~invoke_sdk.events.EventInbox`) goes to every sink except the relays, so it is never sent out again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence

from invoke_sdk.events import (
    BaseEvent,
    EncodedEvent,
    EncodedEventSink,
    EventSink,
    RelayEventSink,
    SelectiveEventSink,
)

__all__ = ["EventBus"]

logger = logging.getLogger("invoke_host.events")


class EventBus:
    """A Host service: starts the sinks, delivers events to them, stops them."""

    def __init__(self, sinks: Sequence[EventSink] = ()) -> None:
        self.sinks: list[EventSink] = list(sinks)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._started: list[EventSink] = []
        self._local: list[EventSink] = []
        """The started sinks that are not relays: what an event from another node goes to."""
        self._pending: deque[tuple[BaseEvent | EncodedEvent, bool]] = deque()
        self._pending_lock = threading.Lock()
        self._flush_scheduled = False
        # Read from worker threads by wants(): replaced whole (a tuple), never changed in place.
        self._asked: tuple[Callable[[str], bool], ...] | None = ()
        self._asked_remote: tuple[Callable[[str], bool], ...] | None = ()
        self._asked_typed: tuple[Callable[[str], bool], ...] | None = ()
        # How each started sink takes an encoded event: (sink, its deliver_encoded or None, its wants or None).
        self._encoded_routes: list[tuple[EventSink, Callable[[EncodedEvent], None] | None,
                                         Callable[[str], bool] | None]] = []

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
        self._local = [s for s in self._started if not isinstance(s, RelayEventSink)]
        self._asked = self._selectors(self._started)
        self._asked_remote = self._selectors(self._local)
        self._asked_typed = self._selectors([s for s in self._started if not isinstance(s, EncodedEventSink)])
        self._encoded_routes = [
            (s, s.deliver_encoded if isinstance(s, EncodedEventSink) else None,
             s.wants if isinstance(s, SelectiveEventSink) else None)
            for s in self._started
        ]

    @staticmethod
    def _selectors(sinks: Sequence[EventSink]) -> tuple[Callable[[str], bool], ...] | None:
        """The sinks' ``wants``; None when one of them wants everything (it has no ``wants``)."""
        selectors = []
        for sink in sinks:
            if not isinstance(sink, SelectiveEventSink):
                return None
            selectors.append(sink.wants)
        return tuple(selectors)

    def wants(self, event_name: str, *, remote: bool = False) -> bool:
        """Whether a started sink would use an event of this name now: if not, the emitter need not build it.

        Safe from any thread. True when any sink has no ``wants`` (it takes everything), or when asking a sink
        fails (the failure is logged); False before the bus starts and after it stops. ``remote``: whether a sink
        other than the relays would (for an event from another node).
        """
        if self._loop is None:
            return False
        return self._ask(self._asked_remote if remote else self._asked, event_name)

    def wants_typed(self, event_name: str) -> bool:
        """Whether a started sink that cannot take an encoded event would use one of this name now: then the
        emitter of an :class:`~invoke_sdk.events.EncodedEvent` should build its typed model itself. Any thread."""
        if self._loop is None:
            return False
        return self._ask(self._asked_typed, event_name)

    @staticmethod
    def _ask(asked: tuple[Callable[[str], bool], ...] | None, event_name: str) -> bool:
        if asked is None:
            return True
        for wants in asked:
            try:
                if wants(event_name):
                    return True
            except Exception:
                logger.exception("An event sink failed to say whether it wants %r; it gets it", event_name)
                return True
        return False

    async def stop(self) -> None:
        self._asked = self._asked_remote = self._asked_typed = ()
        self._local = []
        self._encoded_routes = []
        started, self._started = self._started, []
        for sink in reversed(started):
            try:
                await sink.stop()
            except Exception:
                logger.exception("Event sink %r failed to stop", sink.name)
        self._loop = None

    def emit(self, event: BaseEvent, *, remote: bool = False) -> None:
        """Deliver ``event`` to every sink. Safe from any thread (node code runs in worker threads).

        ``remote``: the event came from another node; it goes to every sink but the relays.
        """
        self._enqueue(event, remote)

    def emit_encoded(self, event: EncodedEvent) -> None:
        """Deliver an event written as its wire message: sinks that take encoded events get it as it is, every
        other sink that wants it (or cannot say) its typed model. Safe from any thread."""
        self._enqueue(event, False)

    def _enqueue(self, event: BaseEvent | EncodedEvent, remote: bool) -> None:
        loop = self._loop
        if loop is None:
            return  # not started (a CLI command, or shut down): nobody is listening
        if threading.get_ident() == self._loop_thread:
            if self._pending:
                self._flush()
            self._dispatch(event, remote)
            return
        with self._pending_lock:
            self._pending.append((event, remote))
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        try:
            loop.call_soon_threadsafe(self._flush)
        except RuntimeError:
            pass  # the loop closed under us: nobody is listening any more

    def _flush(self) -> None:
        with self._pending_lock:
            events = list(self._pending)
            self._pending.clear()
            self._flush_scheduled = False
        for event, remote in events:
            self._dispatch(event, remote)

    def _dispatch(self, event: BaseEvent | EncodedEvent, remote: bool = False) -> None:
        if isinstance(event, EncodedEvent):
            self._dispatch_encoded(event)
            return
        for sink in self._local if remote else self._started:
            try:
                sink.deliver(event)
            except Exception:
                logger.exception("Event sink %r failed on event %r; the other sinks still got it", sink.name,
                                 event.event_name)

    def _dispatch_encoded(self, event: EncodedEvent) -> None:
        for sink, deliver_encoded, wants in self._encoded_routes:
            try:
                if deliver_encoded is not None:
                    deliver_encoded(event)
                elif wants is None or self._ask((wants,), event.event_name):
                    sink.deliver(event.typed())
            except Exception:
                logger.exception("Event sink %r failed on event %r; the other sinks still got it", sink.name,
                                 event.event_name)
