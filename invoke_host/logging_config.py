"""One logging set-up for a host process: our loggers, Litestar's and uvicorn's, in one format at one level.

Litestar and uvicorn each configure logging of their own by default (Litestar a root handler at INFO, uvicorn
handlers on its loggers that do not propagate), which gave a server's log three formats and a level only partly
set by ``--log-level`` (Litestar's set-up also reset the root logger to INFO). Here the root logger gets the one
handler and the level; the app is built with :func:`litestar_logging_config`, which leaves the root alone, and
uvicorn with ``log_config=None`` (see :mod:`invoke_host.app` and :mod:`invoke_host.serving`), so their records
reach that handler through their loggers' parents.

That handler writes nothing itself: it queues each record for the one thread that writes the stream
(:mod:`invoke_host.log_queue`), so no log call waits for stderr. That thread is stopped, its queue written out
first, when logging is configured again and at the process's exit (:func:`stop_log_writer`).
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
from typing import Any

from litestar.logging.config import LoggingConfig

from invoke_host.log_queue import DroppingQueueHandler, LogWriter

__all__ = ["LOG_FORMAT", "configure_logging", "litestar_logging_config", "stop_log_writer"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_HANDLER_NAME = "invoke-host"

# Loggers that would write through handlers of their own and not propagate: made to hand their records up.
_LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "litestar")

# Loggers whose DEBUG output is one line per database operation or file chunk: they stay at INFO even under
# --log-level debug, where they would bury what the host says.
_CHATTY = ("aiosqlite", "PIL", "multipart", "python_multipart", "httpcore", "urllib3", "filelock")


# websockets' lines for each frame a connection sends or receives ("> TEXT '{...' [812 bytes]"), at DEBUG on the
# logger uvicorn gives it, uvicorn.error: one per frame, so one per few events a busy client takes. The
# connection's own lines (opened, closed) stay.
_FRAME_MESSAGES = frozenset({"> %s", "< %s", "> EOF", "< EOF"})


class _NoFrameLines(logging.Filter):
    """Drops websockets' per-frame DEBUG lines from ``uvicorn.error`` (the frames' text is not an operator's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.DEBUG and record.msg in _FRAME_MESSAGES)


_writer: LogWriter | None = None
"""The thread writing the queued records of the root's handler, while there is one."""
_stop_at_exit = False


def configure_logging(level: str, *, max_backlog: int) -> None:
    """Send every log record at ``level`` or above to stderr in :data:`LOG_FORMAT`, written by a thread of its own.

    The root logger gets one handler that queues each record (at most ``max_backlog``, the ``max_log_backlog``
    setting, waiting; more are dropped and counted: :mod:`invoke_host.log_queue`), unless something else (pytest,
    an embedding program) already gave it handlers: then those stay and only the level is set. Calling it again
    replaces its own handler and its writer, once the old writer has written what it held.
    """
    global _writer, _stop_at_exit
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == _HANDLER_NAME]
    if ours or not root.handlers:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(LOG_FORMAT))
        handler = DroppingQueueHandler(queue.Queue(max_backlog))
        handler.set_name(_HANDLER_NAME)
        writer = LogWriter(handler, stream, max_backlog)
        writer.start()
        # The new handler first, then the old one out: no record between the two finds the root without one.
        root.addHandler(handler)
        old, _writer = _writer, writer
        for replaced in ours:
            root.removeHandler(replaced)
        if old is not None:
            old.stop()
        if not _stop_at_exit:
            # Registered after logging's own exit hook, so it runs before it: the queue is written out while the
            # stream is still open.
            atexit.register(stop_log_writer)
            _stop_at_exit = True
    root.setLevel(numeric)
    for name in _LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        for own in list(library.handlers):
            library.removeHandler(own)
        library.propagate = True
        library.setLevel(logging.NOTSET)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(numeric, logging.INFO))
    uvicorn_error = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _NoFrameLines) for f in uvicorn_error.filters):
        uvicorn_error.addFilter(_NoFrameLines())


def stop_log_writer() -> None:
    """Write out what the log's queue holds and end its thread; later records are written by the caller's thread.

    Runs at the process's exit (registered by :func:`configure_logging`). The root's queueing handler is swapped
    for the stream handler it fed, filters included (the secret redaction, :mod:`invoke_host.security`), so a line
    logged after this (by a later exit hook, or a thread still running) is still written.
    """
    global _writer
    writer, _writer = _writer, None
    if writer is None:
        return
    root = logging.getLogger()
    if writer.source in root.handlers:
        for kept in writer.source.filters:
            writer.handler.addFilter(kept)
        writer.handler.set_name(_HANDLER_NAME)
        # Added before the queue is written out: a record logged meanwhile may come before the last queued ones, but
        # none is lost.
        root.addHandler(writer.handler)
        root.removeHandler(writer.source)
    writer.stop()


def _log_unexpected(logger: Any, scope: Any, traceback_lines: list[str]) -> None:
    """Litestar's exception record, for exceptions that became a 500 only.

    Litestar judges by the *class's* ``status_code`` (``HTTPException``'s is 500), so a deliberate
    ``HTTPException(status_code=422)`` would be logged as an "Uncaught exception" with its traceback; here the
    instance's status decides. Deliberate answers (4xx, 503) and deep JSON's ``RecursionError`` (answered 400 and
    logged by its own handler) stay out of the log.
    """
    error = sys.exc_info()[1]
    status = getattr(error, "status_code", 500)
    if isinstance(error, RecursionError) or (isinstance(status, int) and status != 500 and 400 <= status < 600):
        return
    logger.error(
        "Uncaught exception (connection_type=%s, path=%r):\n%s",
        scope["type"], scope["path"], "".join(traceback_lines).rstrip("\n"),
    )


def litestar_logging_config() -> LoggingConfig:
    """Litestar's logging with no handler or root set-up of its own: the ``litestar`` logger hands its records to
    the root handler. It logs the traceback of each exception that became a 500 (a bug), and nothing for the
    deliberate answers (:func:`_log_unexpected`)."""
    # Litestar adds these two handlers whatever it is given, and builds them even when no logger uses them: made
    # null handlers, they start no queue thread.
    unused = {"class": "logging.NullHandler"}
    return LoggingConfig(
        configure_root_logger=False,
        handlers={"console": dict(unused), "queue_listener": dict(unused)},
        loggers={"litestar": {"level": "NOTSET", "handlers": [], "propagate": True}},
        log_exceptions="always",
        exception_logging_handler=_log_unexpected,
    )
