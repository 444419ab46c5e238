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


def litestar_logging_config() -> LoggingConfig:
    """Litestar's logging with no handler or root set-up of its own: the ``litestar`` logger hands its records to
    the root handler. It logs the traceback of each exception that became a 500 (a bug: every deliberate answer,
    4xx or 503, is an ``HTTPException`` with its status and stays out of the log, as does deep JSON's
    ``RecursionError``, which its handler answers 400 and logs itself)."""
    # Litestar adds these two handlers whatever it is given, and builds them even when no logger uses them: made
    # null handlers, they start no queue thread.
    unused = {"class": "logging.NullHandler"}
    deliberate: set[int | type[Exception]] = {*range(400, 600), RecursionError}
    deliberate.discard(500)
    return LoggingConfig(
        configure_root_logger=False,
        handlers={"console": dict(unused), "queue_listener": dict(unused)},
        loggers={"litestar": {"level": "NOTSET", "handlers": [], "propagate": True}},
        log_exceptions="always",
        disable_stack_trace=deliberate,
    )
