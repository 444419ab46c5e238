"""Step 1 of start-up, discovery: load plugins into a pluggy manager, one at a time, each in its own error capture.

pluggy's own ``load_setuptools_entrypoints`` stops at the first plugin that fails to import;
here a broken plugin is recorded and skipped and every other plugin still loads.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

import importlib_metadata
import pluggy
from invoke_sdk import hookspecs

__all__ = ["ExplicitPlugin", "PluginRecord", "PluginSet", "load_plugins"]

logger = logging.getLogger("invoke_host.plugins")

PluginStatus = Literal["loaded", "failed", "blocked"]


@dataclass
class PluginRecord:
    """What the host knows of one plugin: where it came from, what it gave, and how it failed."""

    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    source: Literal["entry_point", "explicit"] = "entry_point"
    status: PluginStatus = "loaded"
    error: str | None = None
    traceback: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)

    def fail(self, stage: str, exc: BaseException) -> None:
        self.status = "failed"
        self.error = f"{stage}: {type(exc).__name__}: {exc}"
        self.traceback = "".join(traceback.format_exception(exc))
        self.registered = {}
        where = f" (distribution {self.distribution} {self.version})" if self.distribution else ""
        logger.error("Plugin %r%s was skipped because %s", self.name, where, self.error)

    def describe(self) -> str:
        """A short label for messages: the name and the distribution it came from."""
        if self.distribution:
            return f"plugin {self.name!r} ({self.distribution} {self.version})"
        return f"plugin {self.name!r}"


@dataclass(frozen=True)
class ExplicitPlugin:
    """A plugin handed to the host directly (by tests or embedding code) instead of through an entry point."""

    name: str
    plugin: Any


@dataclass
class PluginSet:
    """The plugin manager and a record per plugin, in load order."""

    manager: pluggy.PluginManager
    records: list[PluginRecord]

    def loaded(self) -> list[tuple[PluginRecord, Any]]:
        """(record, plugin object) for every plugin that loaded, in load order."""
        out = []
        for record in self.records:
            if record.status == "loaded":
                obj = self.manager.get_plugin(record.name)
                if obj is not None:
                    out.append((record, obj))
        return out


def _matches(entry_point: importlib_metadata.EntryPoint, names: Iterable[str]) -> bool:
    dist = entry_point.dist.name if entry_point.dist is not None else None
    wanted = {n.lower().replace("_", "-") for n in names}
    return entry_point.name.lower().replace("_", "-") in wanted or (
        dist is not None and dist.lower().replace("_", "-") in wanted
    )


def _register(manager: pluggy.PluginManager, record: PluginRecord, plugin: Any) -> None:
    try:
        manager.register(plugin, name=record.name)
        # Turns a misspelled hook name (register_invocation) into an error instead of silence.
        manager.check_pending()
    except Exception as exc:  # noqa: BLE001 - any failure of one plugin must not stop the others
        if manager.get_plugin(record.name) is not None:
            manager.unregister(name=record.name)
        record.fail("invalid hooks", exc)


def _entry_points() -> list[importlib_metadata.EntryPoint]:
    found = importlib_metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)
    # Entry-point order follows the file system; sort so every start loads in the same order.
    return sorted(found, key=lambda ep: ((ep.dist.name if ep.dist else "").lower(), ep.name))


def load_plugins(
    plugins: Sequence[ExplicitPlugin | tuple[str, Any] | ModuleType] = (),
    *,
    entry_points: bool = True,
    allow: Sequence[str] | None = None,
    block: Sequence[str] = (),
) -> PluginSet:
    """Create a plugin manager with the SDK's hookspecs and load explicit and entry-point plugins into it."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    records: list[PluginRecord] = []
    seen: set[str] = set()

    for item in plugins:
        if isinstance(item, ExplicitPlugin):
            name, obj = item.name, item.plugin
        elif isinstance(item, tuple):
            name, obj = item
        else:
            name, obj = getattr(item, "__name__", repr(item)), item
        record = PluginRecord(name=name, module=getattr(obj, "__name__", None), source="explicit")
        records.append(record)
        if name in seen:
            record.fail("load", ValueError(f"another plugin is already named {name!r}"))
            continue
        seen.add(name)
        _register(manager, record, obj)

    if entry_points:
        for ep in _entry_points():
            dist = ep.dist
            record = PluginRecord(
                name=ep.name,
                distribution=dist.name if dist else None,
                version=dist.version if dist else None,
                module=ep.value,
            )
            records.append(record)
            if (allow is not None and not _matches(ep, allow)) or _matches(ep, block):
                record.status = "blocked"
                logger.info("%s is not loaded: the allow/block lists exclude it", record.describe())
                continue
            if ep.name in seen:
                record.fail(
                    "load", ValueError(f"another plugin is already named {ep.name!r}; rename this entry point")
                )
                continue
            try:
                obj = ep.load()
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                record.fail("import", exc)
                continue
            seen.add(ep.name)
            _register(manager, record, obj)

    for record in records:
        if record.status == "loaded":
            logger.debug("Loaded %s", record.describe())
    return PluginSet(manager=manager, records=records)
