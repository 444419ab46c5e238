"""The run manifest: which packs (distribution, version) and which model files (hash) made an image.

Every image a node saves records it in its metadata under :data:`~invoke_sdk.images.RUN_MANIFEST_KEY`, beside the
generation metadata. Replaying the image's graph later compares the manifest with what this server has now (see
:func:`manifest_differences`): a pack gone or at another version, a node type no pack registers, a model removed or
whose files changed. Neither InvokeAI nor ComfyUI records this; an image alone then says whether it can be made
again as it was.
"""

from __future__ import annotations

import importlib.metadata
import typing
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, Literal

from invoke_sdk import ModelIdentifierField
from invoke_sdk.models.records import ModelRecordStore, UnknownModelKeyError
from pydantic import BaseModel, Field

from invoke_host import __version__
from invoke_host.registry import FrozenRegistry

__all__ = [
    "ManifestModel",
    "ManifestPlugin",
    "ReplayDifference",
    "RunManifest",
    "RunManifestBuilder",
    "manifest_differences",
]


class ManifestPlugin(BaseModel):
    """One plugin whose nodes are in the graph."""

    plugin: str = Field(description="The plugin's name (its entry point's)")
    distribution: str | None = Field(default=None, description="The distribution that ships it, if known")
    version: str | None = Field(default=None, description="That distribution's version, if known")
    node_types: list[str] = Field(description="The node types of the graph that this plugin registered")


class ManifestModel(BaseModel):
    """One model the graph names, as its record was when the image was made."""

    key: str
    hash: str | None = Field(default=None, description="The content hash of its files; null if it was not installed")
    name: str | None = None
    base: str | None = None
    type: str | None = None


class RunManifest(BaseModel):
    """What made an image: the host's version, the packs of its graph's nodes, the models its graph names."""

    host_version: str
    plugins: list[ManifestPlugin]
    models: list[ManifestModel]


DifferenceKind = Literal["missing_plugin", "plugin_version", "missing_node_type", "missing_model", "model_hash"]


class ReplayDifference(BaseModel):
    """One way this server differs now from the one that made an image."""

    kind: DifferenceKind
    subject: str = Field(description="The distribution, plugin, node type or model key that differs")
    was: str | None = Field(default=None, description="What the image's manifest recorded (version, hash)")
    now: str | None = Field(default=None, description="What this server has now (null: nothing)")
    message: str


def _value(x: Any) -> str | None:
    return None if x is None else str(getattr(x, "value", x))


def _names_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, ModelIdentifierField):
        return True
    return any(_names_model(arg) for arg in typing.get_args(annotation))


@cache
def _distributions() -> Mapping[str, list[str]]:
    # Read once: it walks every installed distribution's file list.
    return importlib.metadata.packages_distributions()


def _normalised(distribution: str) -> str:
    return distribution.lower().replace("_", "-").replace(".", "-")


def _distribution_of(module: str | None) -> tuple[str | None, str | None]:
    """The distribution (and version) that installs ``module``'s top-level package, for a plugin given by module."""
    if not module:
        return None, None
    names = _distributions().get(module.split(".", 1)[0], [])
    if len(names) != 1:
        return None, None
    try:
        return names[0], importlib.metadata.version(names[0])
    except importlib.metadata.PackageNotFoundError:
        return names[0], None


class RunManifestBuilder:
    """Builds the manifest of a graph (its JSON data, as images embed it) over one registry and the model records."""

    def __init__(self, registry: FrozenRegistry, records: ModelRecordStore | None) -> None:
        self.registry = registry
        self.records = records
        self._model_fields: dict[str, tuple[str, ...]] = {}
        self._plugins: dict[str, tuple[str | None, str | None]] = {}
        for record in registry.plugins:
            if record.distribution:
                self._plugins[record.name] = (record.distribution, record.version)
            else:
                self._plugins[record.name] = _distribution_of(record.module)

    def loaded_distributions(self) -> dict[str, tuple[str, str | None]]:
        """Normalised distribution name -> (name, version), for every loaded plugin whose distribution is known."""
        return {_normalised(dist): (dist, version) for dist, version in self._plugins.values() if dist}

    def _fields_naming_models(self, node_type: str) -> tuple[str, ...]:
        found = self._model_fields.get(node_type)
        if found is None:
            registered = self.registry.invocations.get(node_type)
            fields = registered.value.model_fields if registered is not None else {}
            found = self._model_fields[node_type] = tuple(
                name for name, info in fields.items() if _names_model(info.annotation)
            )
        return found

    def model_keys(self, graph: Mapping[str, Any]) -> list[str]:
        """The keys of the models the graph's nodes name in their fields, in graph order, each once."""
        keys: dict[str, None] = {}
        for node in _nodes(graph):
            node_type = node.get("type")
            if not isinstance(node_type, str):
                continue
            for name in self._fields_naming_models(node_type):
                value = node.get(name)
                for ref in value if isinstance(value, list) else [value]:
                    if isinstance(ref, Mapping) and isinstance(ref.get("key"), str):
                        keys.setdefault(ref["key"], None)
        return list(keys)

    def plugins(self, graph: Mapping[str, Any]) -> list[ManifestPlugin]:
        """The plugins whose node types the graph uses, by plugin name."""
        by_plugin: dict[str, set[str]] = {}
        for node in _nodes(graph):
            node_type = node.get("type")
            registered = self.registry.invocations.get(node_type) if isinstance(node_type, str) else None
            if registered is not None:
                by_plugin.setdefault(registered.plugin, set()).add(node_type)  # type: ignore[arg-type]
        return [
            ManifestPlugin(plugin=name, distribution=self._plugins.get(name, (None, None))[0],
                           version=self._plugins.get(name, (None, None))[1], node_types=sorted(types))
            for name, types in sorted(by_plugin.items())
        ]

    async def model(self, key: str) -> ManifestModel:
        """The model's record as it is now (only the key when it is not installed)."""
        if self.records is None:
            return ManifestModel(key=key)
        try:
            config = await self.records.get(key)
        except (UnknownModelKeyError, KeyError):
            return ManifestModel(key=key)
        return ManifestModel(key=key, hash=config.hash, name=config.name, base=_value(getattr(config, "base", None)),
                             type=_value(getattr(config, "type", None)))

    async def build(self, graph: Mapping[str, Any]) -> RunManifest:
        """The manifest of ``graph`` with this server's packs and model records."""
        models = [await self.model(key) for key in self.model_keys(graph)]
        return RunManifest(host_version=__version__, plugins=self.plugins(graph), models=models)


def _nodes(graph: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    nodes = graph.get("nodes")
    if not isinstance(nodes, Mapping):
        return []
    return [n for n in nodes.values() if isinstance(n, Mapping)]


async def manifest_differences(
    builder: RunManifestBuilder, graph: Mapping[str, Any], recorded: RunManifest | None
) -> list[ReplayDifference]:
    """How this server differs from the one that made an image of ``graph`` (its ``recorded`` manifest, if any).

    Without a manifest (an image from another server) only what the graph itself names is checked: node types no
    pack registers, and models that are not installed or whose hash is not the one the graph gives.
    """
    found: list[ReplayDifference] = []
    loaded = builder.loaded_distributions()
    plugin_names = {record.name for record in builder.registry.plugins}
    for plugin in recorded.plugins if recorded is not None else []:
        if plugin.distribution:
            now = loaded.get(_normalised(plugin.distribution))
            if now is None:
                found.append(ReplayDifference(
                    kind="missing_plugin", subject=plugin.distribution, was=plugin.version,
                    message=f"{plugin.distribution} {plugin.version or ''} (plugin {plugin.plugin!r}, nodes "
                    f"{', '.join(plugin.node_types)}) is not installed here; install it to replay this image",
                ))
            elif plugin.version != now[1]:
                found.append(ReplayDifference(
                    kind="plugin_version", subject=plugin.distribution, was=plugin.version, now=now[1],
                    message=f"{plugin.distribution} made this image at version {plugin.version}; this server has "
                    f"{now[1]}: its nodes may give a different image",
                ))
        elif plugin.plugin not in plugin_names:
            found.append(ReplayDifference(
                kind="missing_plugin", subject=plugin.plugin,
                message=f"plugin {plugin.plugin!r} (nodes {', '.join(plugin.node_types)}) is not loaded here",
            ))
    for node_id, node in (graph.get("nodes") or {}).items() if isinstance(graph.get("nodes"), Mapping) else []:
        node_type = node.get("type") if isinstance(node, Mapping) else None
        if isinstance(node_type, str) and node_type not in builder.registry.invocations:
            found.append(ReplayDifference(
                kind="missing_node_type", subject=node_type,
                message=f"node {node_id!r} has type {node_type!r}, which no plugin on this server registers",
            ))
    recorded_models = {m.key: m for m in recorded.models} if recorded is not None else {}
    given_hashes = _graph_model_hashes(graph)
    for key in builder.model_keys(graph) or list(recorded_models):
        now_model = await builder.model(key)
        was_hash = recorded_models[key].hash if key in recorded_models else given_hashes.get(key)
        label = now_model.name or (recorded_models[key].name if key in recorded_models else None) or key
        if now_model.hash is None:
            found.append(ReplayDifference(
                kind="missing_model", subject=key, was=was_hash,
                message=f"model {label!r} ({key}) is not installed here; install it to replay this image",
            ))
        elif was_hash is not None and was_hash != now_model.hash:
            found.append(ReplayDifference(
                kind="model_hash", subject=key, was=was_hash, now=now_model.hash,
                message=f"the files of model {label!r} ({key}) changed since this image was made ({was_hash} then, "
                f"{now_model.hash} now)",
            ))
    return found


def _graph_model_hashes(graph: Mapping[str, Any]) -> dict[str, str]:
    """Model key -> the hash a graph's own model references give (InvokeAI's graphs carry them)."""
    hashes: dict[str, str] = {}
    for node in _nodes(graph):
        for value in node.values():
            for ref in value if isinstance(value, list) else [value]:
                if isinstance(ref, Mapping) and isinstance(ref.get("key"), str) and isinstance(ref.get("hash"), str):
                    hashes.setdefault(ref["key"], ref["hash"])
    return hashes
