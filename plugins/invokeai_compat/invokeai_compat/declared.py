"""Every node and output class the ``invokeai`` decorators declared, by module, for the pack plugins to register."""

from __future__ import annotations

from typing import Any

__all__ = ["declared_in", "remember"]

_DECLARED: dict[tuple[str, str], type[Any]] = {}
"""By module and qualified name: a module imported again (reloaded) replaces its classes instead of adding."""


def remember(cls: type[Any]) -> None:
    """Note a decorated class (called by ``@invocation`` and ``@invocation_output``)."""
    _DECLARED.pop((cls.__module__, cls.__qualname__), None)
    _DECLARED[(cls.__module__, cls.__qualname__)] = cls


def declared_in(package: str) -> list[type[Any]]:
    """The classes declared in ``package`` or its submodules, in declaration order."""
    return [
        cls for cls in _DECLARED.values() if cls.__module__ == package or cls.__module__.startswith(package + ".")
    ]
