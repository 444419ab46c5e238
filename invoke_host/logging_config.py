"""One logging set-up for a host process: our loggers, Litestar's and uvicorn's, in one format at one level.

Litestar and uvicorn each configure logging of their own by default (Litestar a root handler at INFO, uvicorn
handlers on its loggers that do not propagate), which gave a server's log three formats and a level only partly
set by ``--log-level`` (Litestar's set-up also reset the root logger to INFO). Here the root logger gets the one
handler and the level; the app is built with :func:`litestar_logging_config`, which leaves the root alone, and
uvicorn with ``log_config=None`` (see :mod:`invoke_host.app` and :mod:`invoke_host.serving`), so their records
reach that handler through their loggers' parents.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from litestar.logging.config import LoggingConfig

__all__ = ["LOG_FORMAT", "configure_logging", "litestar_logging_config"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_HANDLER_NAME = "invoke-host"

# Loggers that would write through handlers of their own and not propagate: made to hand their records up.
_LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "litestar")

# Loggers whose DEBUG output is one line per database operation or file chunk: they stay at INFO even under
# --log-level debug, where they would bury what the host says.
_CHATTY = ("aiosqlite", "PIL", "multipart", "httpcore", "urllib3", "filelock")


def configure_logging(level: str) -> None:
    """Send every log record at ``level`` or above to stderr in :data:`LOG_FORMAT`.

    The root logger gets one stream handler, unless something else (pytest, an embedding program) already gave
    it handlers: then those stay and only the level is set. Calling it again replaces its own handler.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == _HANDLER_NAME]
    for handler in ours:
        root.removeHandler(handler)
    if ours or not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    root.setLevel(numeric)
    for name in _LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        for handler in list(library.handlers):
            library.removeHandler(handler)
        library.propagate = True
        library.setLevel(logging.NOTSET)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(numeric, logging.INFO))


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
