"""Paths a person typed (an install source, a folder to scan), with ``~`` and ``~user`` expanded."""

from __future__ import annotations

from pathlib import Path

__all__ = ["expand_user_path"]


def expand_user_path(text: str) -> Path:
    """``text`` as a path with a leading ``~`` or ``~user`` expanded.

    Raises ValueError (answered as a 4xx) when it names the home folder of a user this machine does not have:
    pathlib raises RuntimeError there, which would otherwise reach the client as a 500.
    """
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = text[1:].split("/", 1)[0]
        raise ValueError(
            f"{text!r} starts with ~{user}, but this machine has no user {user!r} whose home folder it could name; "
            "give the full path"
        ) from None
