"""Host limits a node can read, and the error that names the setting a person raises to allow more.

The host bounds what one request may make it do (collection lengths, string lengths, image pixels, ...)
with settings such as ``max_collection_size``. It checks every node's outputs after the node ran, but
a node whose output size follows from an input number (a range of ``size`` items, an image of
``width`` x ``height``) should refuse before it allocates anything. The host hands its limits to nodes
twice, as a mapping from setting name to value:

- while a graph is validated, as the pydantic validation context (``info.context`` in a validator),
  so a constant that is too big is refused when the graph is submitted;
- while a node runs, in ``context.config``, so a value that arrived over an edge is refused too.

Either may lack a setting (a node tested on its own, another host): :func:`check_limit` then checks nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SETTINGS_ENV_PREFIX", "LimitExceededError", "check_limit", "host_limit", "setting_env_var"]

SETTINGS_ENV_PREFIX = "INVOKE_HOST_"
"""Environment variables that set the host's settings start with this."""


def setting_env_var(setting: str) -> str:
    """The environment variable of a host setting: ``max_collection_size`` -> ``INVOKE_HOST_MAX_COLLECTION_SIZE``."""
    return SETTINGS_ENV_PREFIX + setting.upper()


class LimitExceededError(ValueError):
    """Something would grow past a host limit; the message names the setting, its variable and its value."""

    def __init__(self, what: str, amount: int, setting: str, limit: int) -> None:
        self.what = what
        self.amount = amount
        self.setting = setting
        self.limit = limit
        super().__init__(
            f"{what} is {amount}, which exceeds {setting} ({setting_env_var(setting)}={limit}); "
            "make it smaller, or raise the setting"
        )


def host_limit(settings: Any, setting: str) -> int | None:
    """The value of a host limit in ``settings`` (``context.config`` or a validation context); None if absent."""
    if not isinstance(settings, Mapping):
        return None
    value = settings.get(setting)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_limit(amount: int, setting: str, settings: Any, what: str) -> None:
    """Raise :class:`LimitExceededError` when ``amount`` exceeds the limit ``settings`` give for ``setting``.

    ``what`` says what was measured, for the message: ``"the range's length"`` reads as
    "the range's length is 20000000, which exceeds max_collection_size (INVOKE_HOST_MAX_COLLECTION_SIZE=10000)".
    """
    limit = host_limit(settings, setting)
    if limit is not None and amount > limit:
        raise LimitExceededError(what, amount, setting, limit)
