"""Secrets never reach the logs: a filter on every handler that blanks them out of each record.

Uvicorn's access log writes each request's path with its query string; a client that puts a
token in the URL (``?token=``, ``?access_token=``) would have it written to disk. The filter
blanks the values of query parameters whose names say they are secret, ``Bearer`` credentials,
the websocket bearer subprotocol, and the server's own access token wherever it appears.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from invoke_host.security.access_token import BEARER_SUBPROTOCOL_PREFIX

__all__ = ["REDACTED", "SecretRedactingFilter", "install_log_redaction", "redact"]

REDACTED = "[redacted]"

_SECRET_QUERY = re.compile(
    r"(?i)([?&;](?:[\w.-]*(?:token|secret|password|passwd|api[_-]?key|signature|credential)[\w.-]*|auth"
    r"|authorization|key|sig)=)[^&;#\s\"']*"
)
_BEARER = re.compile(r"(?i)\b((?:bearer|basic)\s+)[^\s,;\"']+")
_BEARER_SUBPROTOCOL = re.compile(re.escape(BEARER_SUBPROTOCOL_PREFIX) + r"[^\s,;\"']+")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret it shows replaced by :data:`REDACTED`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _SECRET_QUERY.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    return _BEARER_SUBPROTOCOL.sub(BEARER_SUBPROTOCOL_PREFIX + REDACTED, text)


class SecretRedactingFilter(logging.Filter):
    """Rewrites a record's message, string arguments and traceback text without their secrets.

    The arguments are redacted one by one rather than folded into the message, because uvicorn's
    access formatter reads them by position.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg, self.secrets)
        if isinstance(record.args, tuple):
            record.args = tuple(self._redact_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._redact_arg(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True

    def _redact_arg(self, arg: object) -> object:
        if isinstance(arg, str):
            return redact(arg, self.secrets)
        if isinstance(arg, (bytes, dict, list, tuple, set)):
            # Uvicorn's trace log prints whole ASGI scopes and messages, headers included: redact their text.
            return redact(str(arg), self.secrets)
        return arg


def install_log_redaction(secrets: Iterable[str] = ()) -> SecretRedactingFilter:
    """Put one :class:`SecretRedactingFilter` on every handler of every logger there is.

    Call it once logging is configured (after uvicorn's and Litestar's set-up, which give their
    loggers handlers of their own): handlers made later lack it.
    """
    redacting = SecretRedactingFilter(secrets)
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, SecretRedactingFilter) for f in handler.filters):
                handler.addFilter(redacting)
    return redacting
