"""The registry's node and output tables: read-only mappings whose classes may be imported on first use.

A table built by collection holds its classes. One restored from the node catalogue
(:mod:`invoke_host.registry.node_catalogue`) holds where each class lives, and imports the module the first time
the class is asked for: a start with unchanged packs builds no pydantic class it does not use. Both answer
``key in table``, ``len``, iteration and :meth:`RegisteredClasses.source` without importing anything.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from invoke_host.registry.errors import RegistrationError
from invoke_host.registry.registered import Registered

__all__ = ["ClassSource", "RegisteredClasses", "import_class", "source_of"]

logger = logging.getLogger("invoke_host.registry")

T = TypeVar("T")


@dataclass(frozen=True)
class ClassSource:
    """Where a registered class lives and what the registry knows of it without importing it."""

    key: str
    plugin: str
    module: str
    qualname: str
    version: str = ""
    """A node type's version (``@invocation(version=...)``); empty for an output type."""


def source_of(key: str, cls: Any, plugin: str) -> ClassSource:
    """The :class:`ClassSource` of a class already imported."""
    info = cls.invocation_info() if hasattr(cls, "invocation_info") else None
    return ClassSource(key, plugin, cls.__module__, cls.__qualname__, info.version if info is not None else "")


def import_class(module: str, qualname: str) -> Any:
    """The object ``module.qualname`` names (a class nested in another one included), imported now."""
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


class RegisteredClasses(Mapping[str, Registered[T]], Generic[T]):
    """Key -> :class:`Registered` class, in a fixed order; a class restored from the catalogue is imported on first use.

    ``check`` (given for restored tables) is called with each class imported and its source, and raises
    :class:`RegistrationError` when the class is not the one the catalogue recorded; ``on_failure`` is called
    then (the catalogue removes itself, so the next start registers every pack afresh).
    """

    def __init__(
        self,
        sources: Mapping[str, ClassSource],
        loaded: Mapping[str, Registered[T]],
        check: Callable[[Any, ClassSource], None] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self._sources = dict(sources)
        self._loaded: dict[str, Registered[T]] = dict(loaded)
        self._check = check
        self._on_failure = on_failure
        # Node threads and the loop may ask for the same class at once; one of them imports it.
        self._lock = threading.Lock()

    def sorted(self) -> RegisteredClasses[T]:
        """The same table in key order (pluggy calls last-registered-first; entry points follow the file system)."""
        keys = sorted(self._sources)
        return RegisteredClasses({k: self._sources[k] for k in keys},
                                 {k: self._loaded[k] for k in keys if k in self._loaded}, self._check,
                                 self._on_failure)

    def __getitem__(self, key: str) -> Registered[T]:
        found = self._loaded.get(key)
        if found is not None:
            return found
        source = self._sources[key]  # KeyError for a key never registered, as a dict
        with self._lock:
            found = self._loaded.get(key)
            if found is None:
                found = self._loaded[key] = Registered(key, self._import(source), source.plugin)
        return found

    def _import(self, source: ClassSource) -> Any:
        try:
            cls = import_class(source.module, source.qualname)
            if self._check is not None:
                self._check(cls, source)
        except Exception as exc:
            message = (f"{source.key!r} from plugin {source.plugin!r} could not be loaded from "
                       f"{source.module}.{source.qualname}, where the node catalogue found it at start-up: "
                       f"{type(exc).__name__}: {exc}; restart the host to register its packs afresh")
            logger.error("%s", message)
            if self._on_failure is not None:
                self._on_failure()
            raise RegistrationError(message) from exc
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def __contains__(self, key: object) -> bool:
        return key in self._sources

    def source(self, key: str) -> ClassSource:
        """Where the class of ``key`` lives, without importing it."""
        return self._sources[key]

    def is_loaded(self, key: str) -> bool:
        """Whether the class of ``key`` has been imported (always, for a table collection built)."""
        return key in self._loaded

    def __repr__(self) -> str:
        return f"RegisteredClasses({len(self._loaded)} of {len(self._sources)} imported)"
