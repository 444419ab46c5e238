"""What InvokeAI offers that this host does not, refused with a message a pack user can act on."""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["NotSupportedHere", "unsupported", "unsupported_callable"]


class NotSupportedHere(NotImplementedError):  # noqa: N818 - reads as the message it carries
    """A pack used a part of InvokeAI that Invoke Host does not provide (see docs/invokeai-packs.md)."""


def unsupported(what: str, why: str = "it needs InvokeAI's own model stack") -> NoReturn:
    """Refuse ``what``, saying why."""
    raise NotSupportedHere(f"{what} is not supported on Invoke Host: {why} (see docs/invokeai-packs.md)")


def unsupported_callable(name: str, why: str = "it needs InvokeAI's own model stack") -> Any:
    """A stand-in for an InvokeAI function: importable, refusing when called."""

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        unsupported(name, why)

    refuse.__name__ = refuse.__qualname__ = name.rsplit(".", 1)[-1]
    refuse.__doc__ = f"InvokeAI's {name}; not supported on Invoke Host."
    return refuse
