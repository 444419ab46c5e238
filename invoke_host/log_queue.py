"""The log's writes off the threads that log: records go into a bounded queue, one thread writes them out.

A handler that writes to stderr in the thread that logs makes every log call wait for the write, and the event
loop logs (uvicorn's access log, the log sink, the queue): with stderr a pipe that its reader (journald, a
container runtime, a terminal) empties slower than a debug-level server wrote, the loop stalled on the writes and
a running item lost its lease (docs/benchmarks.md, "Logging at debug level off the event loop"). Here a log call
costs a copy of the record and a put; :class:`LogWriter`, the standard library's ``QueueListener`` on one thread
of its own, formats and writes.

The queue is bounded (``max_log_backlog`` records): a stream that stops being read would otherwise grow it
without end, and a full queue that blocked the caller would stall the loop again, the thing this module is for.
A record that finds it full is dropped and counted; the writer says how many were dropped, in a WARNING line of
its own, before the next record it writes.
"""

from __future__ import annotations

import logging
import threading
from logging.handlers import QueueHandler, QueueListener
from queue import Full, Queue

__all__ = ["DroppingQueueHandler", "LogWriter"]

_THREAD_NAME = "invoke-host-log"


class DroppingQueueHandler(QueueHandler):
    """Puts each record (formatted to its message, traceback included) in a bounded queue; never waits.

    A record that finds the queue full is dropped and counted (:meth:`take_dropped`).
    """

    queue: Queue[logging.LogRecord | None]

    def __init__(self, records: Queue[logging.LogRecord | None]) -> None:
        super().__init__(records)
        self._dropped = 0
        self._count_lock = threading.Lock()

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except Full:
            with self._count_lock:  # several threads log: a bare += could lose a count
                self._dropped += 1

    def take_dropped(self) -> int:
        """How many records were dropped since the last call."""
        with self._count_lock:
            dropped, self._dropped = self._dropped, 0
        return dropped


class LogWriter(QueueListener):
    """Writes the records of one :class:`DroppingQueueHandler`'s queue to ``handler``, on a thread of its own."""

    def __init__(self, source: DroppingQueueHandler, handler: logging.Handler, max_backlog: int) -> None:
        super().__init__(source.queue, handler)
        self.source = source
        self.handler = handler
        self.max_backlog = max_backlog

    def start(self) -> None:
        # The standard start, with a name that says whose thread it is (in py-spy, in a thread listing).
        # _monitor: the standard loop (take a record, handle it, until the sentinel), absent from the stubs.
        monitor = self._monitor  # type: ignore[attr-defined]
        self._thread = thread = threading.Thread(target=monitor, name=_THREAD_NAME, daemon=True)
        thread.start()

    def handle(self, record: logging.LogRecord) -> None:
        self._report_drops()
        super().handle(record)

    def stop(self) -> None:
        """Write what is queued, then end the thread (the records dropped last are reported too)."""
        super().stop()
        self._report_drops()
        self.handler.flush()

    def _report_drops(self) -> None:
        dropped = self.source.take_dropped()
        if dropped:
            self.handler.handle(
                logging.LogRecord(
                    "invoke_host.logging",
                    logging.WARNING,
                    __file__,
                    0,
                    "%d log records dropped: more were waiting to be written than max_log_backlog (%d) holds "
                    "(the log's stream is read slower than the server logs; raise INVOKE_HOST_MAX_LOG_BACKLOG "
                    "to keep them)",
                    (dropped, self.max_backlog),
                    None,
                )
            )
