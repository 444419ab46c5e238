"""Step 1 of start-up, discovery: load plugins into a pluggy manager, one at a time, each in its own error capture.

pluggy's own ``load_setuptools_entrypoints`` stops at the first plugin that fails to import;
here a broken plugin is recorded and skipped and every other plugin still loads.

Load order decides conflicts (the first to register a name keeps it), so it is fixed: explicit plugins
as given, then the first-party entry points (:data:`FIRST_PARTY_ENTRY_POINTS`), then every other entry
point sorted by distribution and entry-point name.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

import importlib_metadata
import pluggy
from invoke_sdk import hookspecs

__all__ = ["FIRST_PARTY_ENTRY_POINTS", "ExplicitPlugin", "PluginRecord", "PluginSet", "is_first_party", "load_plugins"]

logger = logging.getLogger("invoke_host.plugins")

PluginStatus = Literal["loaded", "failed", "blocked"]

FIRST_PARTY_ENTRY_POINTS: dict[str, tuple[str, str]] = {
    "invoke-core-events": ("core_events", "invoke_core_events.plugin"),
    "invoke-core-nodes": ("core_nodes", "invoke_core_nodes.plugin"),
    "invoke-diffusers-nodes": ("diffusers_nodes", "invoke_diffusers_nodes.plugin"),
    "invoke-image-nodes": ("image_nodes", "invoke_image_nodes.plugin"),
    "invoke-local-file-storage": ("local_file_storage", "invoke_local_file_storage.plugin"),
    "invoke-postgres-storage": ("postgres_storage", "invoke_postgres_storage.plugin"),
    "invoke-postgres-events": ("postgres_events", "invoke_postgres_events.plugin"),
    "invoke-sd-probers": ("sd_probers", "invoke_sd_probers.plugin"),
    "invoke-spandrel-nodes": ("spandrel_nodes", "invoke_spandrel_nodes.plugin"),
    "invoke-sqlite-storage": ("sqlite_storage", "invoke_sqlite_storage.plugin"),
    "invoke-web-console": ("web_console", "invoke_web_console.plugin"),
}
"""The plugins this repository ships (``plugins/*``): distribution -> (entry-point name, module).

They load before every other entry point, so their node ids, backend names and routes cannot be taken
by a pack whose distribution happens to sort first. Status comes only from this table: an entry point is
first-party when its distribution name (normalised) *and* its entry-point name and module are listed here.
Nothing a pack writes in its own metadata (keywords, an entry point named ``core_nodes``, a look-alike
distribution name) counts. A distribution installed under one of these exact names replaces ours in the
environment, which whoever installs it could do to our files directly: that is not a boundary we can hold.
"""


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def is_first_party(entry_point: importlib_metadata.EntryPoint) -> bool:
    """Whether ``entry_point`` is one of :data:`FIRST_PARTY_ENTRY_POINTS`: distribution, name and module all match."""
    return _first_party(entry_point, entry_point.dist.name if entry_point.dist is not None else None)


def _first_party(entry_point: importlib_metadata.EntryPoint, dist: str | None) -> bool:
    expected = FIRST_PARTY_ENTRY_POINTS.get(_normalise(dist)) if dist else None
    return expected is not None and expected == (entry_point.name, entry_point.value)


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
    first_party: bool = False
    """Shipped by this repository (see :data:`FIRST_PARTY_ENTRY_POINTS`); first-party plugins load first."""

    def fail(self, stage: str, exc: BaseException) -> None:
        self.fail_with(f"{stage}: {type(exc).__name__}: {exc}", "".join(traceback.format_exception(exc)))

    def fail_with(self, error: str, trace: str, why_again: str = "") -> None:
        """Mark the plugin failed with an error already worded (``why_again``: how it is known, when not seen now)."""
        self.status = "failed"
        self.error = error
        self.traceback = trace
        self.registered = {}
        where = f" (distribution {self.distribution} {self.version})" if self.distribution else ""
        logger.error("Plugin %r%s was skipped because %s%s", self.name, where, self.error, why_again)

    def describe(self) -> str:
        """A short label for messages: the name and the distribution it came from."""
        kind = "first-party plugin" if self.first_party else "plugin"
        if self.distribution:
            return f"{kind} {self.name!r} ({self.distribution} {self.version})"
        return f"{kind} {self.name!r}"


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


def _matches(entry_point: importlib_metadata.EntryPoint, dist: str | None, names: Iterable[str]) -> bool:
    wanted = {_normalise(n) for n in names}
    return _normalise(entry_point.name) in wanted or (dist is not None and _normalise(dist) in wanted)


def _register(manager: pluggy.PluginManager, record: PluginRecord, plugin: Any) -> None:
    try:
        manager.register(plugin, name=record.name)
        # Turns a misspelled hook name (register_invocation) into an error instead of silence.
        manager.check_pending()
    except BaseException as exc:
        # SystemExit from a plugin's module __getattr__ included: one plugin must not stop the host.
        if isinstance(exc, KeyboardInterrupt):
            raise
        if manager.get_plugin(record.name) is not None:
            manager.unregister(name=record.name)
        record.fail("invalid hooks", exc)


@dataclass(frozen=True)
class _Found:
    """An entry point of the plugin group with its distribution's name and version, read once."""

    entry_point: importlib_metadata.EntryPoint
    distribution: str | None
    version: str | None
    first_party: bool


def _name_and_version(dist: importlib_metadata.Distribution) -> tuple[str | None, str | None]:
    """The ``Name`` and ``Version`` headers of a distribution's metadata file (None where one is missing).

    Read from the header block alone: ``dist.metadata`` (and each ``dist.name`` or ``dist.version``) runs the whole
    file through the email parser, long description included, about 1.3 ms a distribution (bench/startup.py,
    61 entry points with the bench packs), for two lines near its top.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line:
            break  # the end of the headers (RFC 822): the body, the long description, follows
        key, sep, value = line.partition(":")
        if sep and not line[0].isspace() and (key := key.strip().lower()) in ("name", "version"):
            found.setdefault(key, value.strip())
    return found.get("name"), found.get("version")


def _found(entry_point: importlib_metadata.EntryPoint) -> _Found:
    dist = entry_point.dist
    name, version = _name_and_version(dist) if dist is not None else (None, None)
    return _Found(entry_point, name, version, _first_party(entry_point, name))


def _entry_points() -> list[_Found]:
    found = [_found(ep) for ep in importlib_metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)]
    # Entry-point order follows the file system; sort so every start loads in the same order, first-party first.
    return sorted(found, key=lambda f: (not f.first_party, _normalise(f.distribution or ""), f.entry_point.name))


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
        for found in _entry_points():
            ep = found.entry_point
            record = PluginRecord(
                name=ep.name,
                distribution=found.distribution,
                version=found.version,
                module=ep.value,
                first_party=found.first_party,
            )
            records.append(record)
            if (allow is not None and not _matches(ep, found.distribution, allow)) or _matches(
                ep, found.distribution, block
            ):
                record.status = "blocked"
                logger.info("%s is not loaded: the allow/block lists exclude it", record.describe())
                continue
            if ep.name in seen:
                record.fail(
                    "load", ValueError(f"another plugin is already named {ep.name!r}; rename this entry point")
                )
                continue
            try:
                # A pack that prints while it is imported must not corrupt `plugins --json` or `openapi` on stdout.
                with contextlib.redirect_stdout(sys.stderr):
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
