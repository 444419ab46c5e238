"""The node catalogue: what each plugin's ``register_invocations`` gave, kept between starts.

Building a pack's node classes (pydantic models) is most of what packs add to start-up (about 1 ms per node type,
bench/startup.py). A start writes the catalogue after collecting; the next start whose plugins, their versions
and their Python files are all as they were does not call any plugin's ``register_invocations``: it registers
each node and output type from the catalogue, and imports a class the first time something asks for it (a graph
that uses it, the node listing, the OpenAPI document). Anything else changed, and the start collects as before
and writes the catalogue again.

What "as they were" means is :func:`environment`: the host's version, the Python, every plugin record in load
order (name, distribution, version, module, status) and each folder of ``sys.path`` with its modification time
(an install or removal changes it), plus a digest of the size and modification time of every ``.py`` file under
the packages the plugins' entry modules and classes live in, and under the SDK's, the host's and pydantic's. The
file holds no code: a class is imported from its module by name, as its entry point was, and must be the class the
catalogue recorded (its type id and output type), or using it fails with a message naming the catalogue.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

import invoke_host
from invoke_host.plugin_loader import PluginRecord
from invoke_host.registry.registered_classes import ClassSource, import_class

__all__ = ["CatalogueEntries", "NodeCatalogue", "PluginEntries", "environment"]

logger = logging.getLogger("invoke_host.registry")

FORMAT = 1
_ALWAYS = ("invoke_sdk", "invoke_host", "pydantic", "pydantic_core")
"""Packages whose code decides what a node class is and whether the registry takes it."""


class _Node(msgspec.Struct, array_like=True):
    key: str
    module: str
    qualname: str
    version: str
    output: str


class _Output(msgspec.Struct, array_like=True):
    key: str
    module: str
    qualname: str


class _Plugin(msgspec.Struct):
    nodes: list[_Node] = []
    outputs: list[_Output] = []
    refused: list[str] = []
    failed: list[str] | None = None  # [error, traceback] of a registration hook that raised


class _File(msgspec.Struct):
    format: int
    environment: list[str]
    trees: dict[str, str]
    plugins: dict[str, _Plugin]


@dataclass(frozen=True)
class PluginEntries:
    """One plugin's node and output types, as the catalogue recorded them."""

    nodes: list[tuple[ClassSource, str]] = field(default_factory=list)
    """(the node type's source, its output type id), in registration order."""
    outputs: list[ClassSource] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """The refusals of this plugin's node classes the start that wrote the catalogue logged."""
    failed: tuple[str, str] | None = None
    """(error, traceback) when a registration hook of this plugin raised: it keeps nothing, as then."""


CatalogueEntries = dict[str, PluginEntries]


def environment(records: Sequence[PluginRecord]) -> list[str]:
    """What a catalogue is written for, read before collection (which can fail a plugin's record)."""
    lines = [f"format {FORMAT}", f"invoke-host {invoke_host.__version__}", f"python {sys.version}",
             f"implementation {platform.python_implementation()}"]
    lines += [f"plugin {r.name} {r.source} {r.distribution} {r.version} {r.module} {r.status}" for r in records]
    # A folder on the path changes when a distribution is installed into it or removed from it (a dependency a
    # pack's node modules import, say), which the plugins' own files would not show.
    lines += [f"path {entry} {_mtime(entry)}" for entry in sys.path]
    return lines


def _mtime(path: str) -> int | str:
    try:
        return os.stat(path or ".").st_mtime_ns
    except OSError:
        return "missing"


def _top_level(module: str | None) -> str | None:
    return module.split(":", 1)[0].split(".", 1)[0] if module else None


def _tree_paths(top: str) -> list[str] | None:
    """The folders (or the one file) of an imported top-level module; None when it has none to stat."""
    module = sys.modules.get(top)
    if module is None:
        return None
    paths = list(getattr(module, "__path__", None) or [])
    if not paths and getattr(module, "__file__", None):
        paths = [module.__file__]
    return [os.fspath(p) for p in paths] or None


def _digest(path: str) -> str:
    """Size and modification time of every ``.py`` file under ``path`` (or of ``path`` itself), as one digest."""
    found: list[tuple[str, int, int]] = []
    try:
        if os.path.isfile(path):
            st = os.stat(path)
            found.append(("", st.st_size, st.st_mtime_ns))
        else:
            stack = [path]
            while stack:
                folder = stack.pop()
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.name.startswith(".") or entry.name == "__pycache__":
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.name.endswith(".py"):
                            st = entry.stat()
                            found.append((entry.path, st.st_size, st.st_mtime_ns))
    except OSError as exc:
        return f"unreadable: {exc}"
    found.sort()
    return hashlib.blake2b(repr(found).encode(), digest_size=16).hexdigest()


def _trees(tops: Iterable[str]) -> dict[str, str] | None:
    trees: dict[str, str] = {}
    for top in sorted(set(tops)):
        paths = _tree_paths(top)
        if paths is None:
            return None
        for path in paths:
            trees[path] = _digest(path)
    return trees


class NodeCatalogue:
    """The catalogue file at ``path``: :meth:`restore` before collection, :meth:`write` after a collection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.key: str | None = None
        """A digest of the catalogue this start read or wrote (None before either): what documents derived from
        its registry are kept under (:meth:`read_part`, :meth:`write_part`)."""

    def restore(self, records: Sequence[PluginRecord], environment: list[str]) -> CatalogueEntries | None:
        """Every loaded plugin's entries, when the file was written for ``environment`` (:func:`environment` of
        ``records`` before collection) and the same files; else None."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("The node catalogue %s cannot be read (%s); registering every plugin's nodes",
                           self.path, exc)
            return None
        try:
            data = msgspec.json.decode(raw, type=_File)
        except msgspec.DecodeError as exc:
            logger.warning("The node catalogue %s is not one this host wrote (%s); registering every plugin's "
                           "nodes and writing it again", self.path, exc)
            return None
        if data.format != FORMAT or data.environment != environment:
            logger.info("Plugins or versions changed since the node catalogue was written; registering every "
                        "plugin's nodes")
            return None
        for path, digest in data.trees.items():
            if _digest(path) != digest:
                logger.info("Files under %s changed since the node catalogue was written; registering every "
                            "plugin's nodes", path)
                return None
        loaded = [r.name for r in records if r.status == "loaded"]
        if sorted(data.plugins) != sorted(loaded):
            return None
        self.key = _key(raw)
        return {
            name: PluginEntries(
                nodes=[(ClassSource(n.key, name, n.module, n.qualname, n.version), n.output) for n in p.nodes],
                outputs=[ClassSource(o.key, name, o.module, o.qualname) for o in p.outputs],
                refused=list(p.refused),
                failed=(p.failed[0], p.failed[1]) if p.failed and len(p.failed) == 2 else None,
            )
            for name, p in data.plugins.items()
        }

    def write(
        self,
        records: Sequence[PluginRecord],
        environment: list[str],
        loaded: Sequence[str],
        nodes: Mapping[str, tuple[Any, str, str]],
        outputs: Mapping[str, tuple[Any, str]],
        refused: Mapping[str, list[str]],
    ) -> bool:
        """Record a collection: ``nodes`` is type id -> (class, plugin, output type id), ``outputs`` type id ->
        (class, plugin), ``refused`` plugin -> its node refusals; ``loaded`` names the plugins that were loaded
        before collection. False (and nothing written) when a class cannot be imported back by its module and name,
        or a plugin's files cannot be told (a plugin handed over in code)."""
        if any(r.source != "entry_point" for r in records):
            return False
        by_name = {r.name: r for r in records}
        by_plugin: dict[str, _Plugin] = {}
        for name in loaded:
            record = by_name[name]
            failed = [record.error or "", record.traceback or ""] if record.status == "failed" else None
            by_plugin[name] = _Plugin(refused=list(refused.get(name, [])), failed=failed)
        tops = set(_ALWAYS)
        tops.update(t for name in loaded if (t := _top_level(by_name[name].module)))
        for key, (cls, plugin, output) in nodes.items():
            info = cls.invocation_info()
            if not _importable(cls) or plugin not in by_plugin:
                return False
            by_plugin[plugin].nodes.append(_Node(key, cls.__module__, cls.__qualname__, info.version, output))
            tops.add(cls.__module__.split(".", 1)[0])
        for key, (cls, plugin) in outputs.items():
            if not _importable(cls) or plugin not in by_plugin:
                return False
            by_plugin[plugin].outputs.append(_Output(key, cls.__module__, cls.__qualname__))
            tops.add(cls.__module__.split(".", 1)[0])
        trees = _trees(tops)
        if trees is None:
            return False
        data = _File(format=FORMAT, environment=environment, trees=trees, plugins=by_plugin)
        encoded = msgspec.json.encode(data)
        try:
            _replace(self.path, encoded)
        except OSError as exc:
            logger.warning("The node catalogue %s could not be written (%s); the next start registers every "
                           "plugin's nodes again", self.path, exc)
            return False
        self.key = _key(encoded)
        logger.debug("Node catalogue written: %s (%d node types)", self.path, len(nodes))
        return True

    def _part_path(self, name: str) -> Path:
        return self.path.with_name(f"{self.path.stem}.{name}.json")

    def read_part(self, name: str) -> bytes | None:
        """The ``data`` JSON of the document ``name`` kept for this catalogue (None: none, or one of another)."""
        if self.key is None:
            return None
        try:
            part = msgspec.json.decode(self._part_path(name).read_bytes(), type=_Part)
        except (OSError, msgspec.DecodeError):
            return None
        return bytes(part.data) if part.key == self.key else None

    def write_part(self, name: str, data: bytes) -> None:
        """Keep ``data`` (JSON) as the document ``name`` of this catalogue, for the next start from it."""
        if self.key is None:
            return
        try:
            _replace(self._part_path(name), msgspec.json.encode(_Part(self.key, msgspec.Raw(data))))
        except OSError as exc:
            logger.warning("The node catalogue's %s could not be kept (%s); the next start builds it again", name, exc)

    def discard(self) -> None:
        """Remove the file, so the next start collects afresh (a restored class turned out not to match)."""
        try:
            self.path.unlink(missing_ok=True)
            self.key = None
        except OSError as exc:
            logger.warning("The node catalogue %s could not be removed: %s", self.path, exc)


class _Part(msgspec.Struct):
    key: str
    data: msgspec.Raw


def _key(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` whole: a reader sees the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def _importable(cls: Any) -> bool:
    try:
        return bool(import_class(cls.__module__, cls.__qualname__) is cls)
    except Exception:  # noqa: BLE001 - a class made in a function, or a module that no longer imports
        return False
