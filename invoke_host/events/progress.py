"""Per-item summaries of node starts and completions, counted on the node thread, written once per bus delivery.

A client of ``"node_events": "progress"`` (:mod:`invoke_sdk.progress_summary`) gets no per-node message. While one
is subscribed, the item's publisher counts each start and completion into the :class:`ProgressWindow` its
:class:`ProgressWriter` has open (an increment or three under a lock nobody else holds for long). The writer queues a
window on the bus once, when it opens it, exactly as a :class:`~invoke_host.events.runs.RunWriter` queues a run, and
the loop seals it when it takes it: one summary message for everything counted meanwhile. So a window is one
delivery of the bus (every :data:`~invoke_host.events.bus.FOLLOW_UP` seconds or more while nodes keep coming), and
order is kept the same way: any other event emitted through the bus (the bus's ``epoch`` changes) closes the open
window, so the item's status change always comes after the summary that counts its last node.
"""

from __future__ import annotations

import threading
import time

from invoke_sdk.encoded_run import EncodedEventRun
from invoke_sdk.progress_summary import PROGRESS_SUMMARY_EVENT, InvocationProgressSummaryEvent
from pydantic_core import to_json

from invoke_host.events.runs import RunBus

__all__ = ["ProgressWindow", "ProgressWriter"]

_HEAD = b'{"event":"' + PROGRESS_SUMMARY_EVENT.encode() + b'","data":{"timestamp":'
_NO_LAST = b',"invocation_source_id":null,"invocation_type":null}}'


class ProgressWindow:
    """What a :class:`ProgressWriter` counted since it opened this window (the node thread adds, under the writer's
    lock, until the loop seals it)."""

    __slots__ = ("_writer", "cached", "completed", "epoch", "last", "started")

    form = "progress"

    def __init__(self, writer: ProgressWriter, epoch: int) -> None:
        self._writer = writer
        self.epoch = epoch
        self.started = 0
        self.completed = 0
        self.cached = 0
        self.last: bytes | None = None
        """``,"invocation_source_id":...,"invocation_type":...`` of the last completion (the publisher's kept part)."""

    def seal(self) -> EncodedEventRun:
        """On the loop: close the window (what the thread counts next opens another) and write its summary."""
        writer = self._writer
        with writer.lock:
            if writer.open is self:
                writer.open = None
            started, completed, cached, last = self.started, self.completed, self.cached, self.last
        message = b"".join((
            _HEAD, to_json(time.time()), writer.item_part, b',"started":', str(started).encode(),
            b',"completed":', str(completed).encode(), b',"cached":', str(cached).encode(),
            _NO_LAST if last is None else last + b"}}",
        ))
        return EncodedEventRun(writer.room, [InvocationProgressSummaryEvent], [message])


class ProgressWriter:
    """One queue item's windows of counts. ``item_part`` is ``,"queue_id":...,"item_id":...`` (encoded once)."""

    def __init__(self, bus: RunBus, room: str | None, item_part: bytes) -> None:
        self.bus = bus
        self.room = room
        self.item_part = item_part
        self.lock = threading.Lock()
        self.open: ProgressWindow | None = None

    def _window(self) -> ProgressWindow | None:
        """The open window, under the lock; None after opening a new one (the caller counts into it and queues it)."""
        window = self.open
        if window is not None and window.epoch == self.bus.epoch:
            return window
        return None

    def started(self) -> None:
        """Count a node's start; any thread, never blocks for long."""
        with self.lock:
            window = self._window()
            if window is not None:
                window.started += 1
                return
            window = self.open = ProgressWindow(self, self.bus.epoch)
            window.started = 1
        self._queue(window)

    def completed(self, source_part: bytes, cached: bool) -> None:
        """Count a node's completion; ``source_part``: its ``,"invocation_source_id":...,"invocation_type":...``."""
        with self.lock:
            window = self._window()
            if window is None:
                window = self.open = ProgressWindow(self, self.bus.epoch)
                opened = True
            else:
                opened = False
            window.completed += 1
            if cached:
                window.cached += 1
            window.last = source_part
        if opened:
            self._queue(window)

    def _queue(self, window: ProgressWindow) -> None:
        if not self.bus.emit_run(window):
            # Nobody is listening (the bus is stopped): the window is dropped.
            with self.lock:
                if self.open is window:
                    self.open = None
