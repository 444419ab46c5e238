"""Runs of encoded events that an emitting thread keeps adding to until the loop takes them.

A queue item's node starts and completions are written on its node thread, thousands per second. Queued one object
per event, each cost its own queue slot on the bus and its own decode, measure and append in the websocket sink, per
set of clients. A :class:`RunWriter` instead adds each message's bytes to the run it has open (two list appends
under a lock nobody else holds for long); the bus queues a run once, when it opens, and on the loop seals it
(:meth:`PendingRun.seal`) into an :class:`~invoke_sdk.encoded_run.EncodedEventRun`: the messages joined and decoded
in one call, delivered in one call per sink.

Order: a run holds the messages added while it was open; it closes when the loop seals it, when it holds
:data:`RUN_MAX` messages, or when any other event is emitted through the bus (the bus's :attr:`EventBus.epoch`
changes), so that an event emitted after a message (a progress event, a model load from the same node) is delivered
after it.

A writer of ``brief`` runs adds the brief forms of the same events (:mod:`invoke_sdk.brief_message`): the bus hands
its runs only to the sinks that take brief runs (:class:`~invoke_sdk.event_sinks.BriefEventRunSink`).
"""

from __future__ import annotations

import threading
from typing import Protocol

from invoke_sdk.encoded_run import EncodedEventRun
from invoke_sdk.event_base import BaseEvent

__all__ = ["RUN_MAX", "PendingRun", "RunBus", "RunWriter", "Sealable"]

RUN_MAX = 1000
"""The most messages in one run: a run is one step for a sink, and a loop that is late (or gone) takes it in pieces."""


class RunBus(Protocol):
    """What a writer needs of the bus (:class:`~invoke_host.events.bus.EventBus`, which imports this module)."""

    @property
    def epoch(self) -> int: ...

    def emit_run(self, run: Sealable) -> bool: ...


class Sealable(Protocol):
    """Something queued on the bus that the loop turns into a run when it takes it (a :class:`PendingRun`, a
    :class:`~invoke_host.events.progress.ProgressWindow`)."""

    @property
    def form(self) -> str: ...

    def seal(self) -> EncodedEventRun: ...


class PendingRun:
    """The messages a :class:`RunWriter` added since it opened this run (the emitting thread appends, under its
    writer's lock, until the run is closed)."""

    __slots__ = ("_writer", "classes", "epoch", "parts")

    @property
    def form(self) -> str:
        """Which consumers the sealed run is for: ``full`` or ``brief`` (a
        :class:`~invoke_host.events.progress.ProgressWindow` says ``progress``)."""
        return "brief" if self._writer.brief else "full"

    def __init__(self, writer: RunWriter, epoch: int) -> None:
        self._writer = writer
        self.epoch = epoch
        self.classes: list[type[BaseEvent]] = []
        self.parts: list[bytes] = []

    def seal(self) -> EncodedEventRun:
        """On the loop: close the run (what the thread adds next opens another) and make it one text."""
        writer = self._writer
        with writer.lock:
            if writer.open is self:
                writer.open = None
        return EncodedEventRun(writer.room, self.classes, self.parts)


class RunWriter:
    """One emitter's runs of encoded events of one room (a queue item's node events)."""

    def __init__(self, bus: RunBus, room: str | None, *, brief: bool = False) -> None:
        self.bus = bus
        self.room = room
        self.brief = brief
        self.lock = threading.Lock()
        self.open: PendingRun | None = None

    def add(self, event_class: type[BaseEvent], message: bytes) -> None:
        """Add a whole wire message (UTF-8) of an event of ``event_class``; any thread, never blocks for long."""
        bus = self.bus
        with self.lock:
            run = self.open
            if run is not None and run.epoch == bus.epoch and len(run.parts) < RUN_MAX:
                run.classes.append(event_class)
                run.parts.append(message)
                return
            run = self.open = PendingRun(self, bus.epoch)
            run.classes.append(event_class)
            run.parts.append(message)
        if not bus.emit_run(run):
            # Nobody is listening (the bus is stopped): the run is dropped, not grown without end.
            with self.lock:
                if self.open is run:
                    self.open = None
