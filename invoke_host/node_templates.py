"""Node templates: what a client needs to draw a node and fill in its inputs."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import msgspec

from invoke_host.openapi_components import registry_components
from invoke_host.registry import FrozenRegistry

__all__ = ["NodeTemplate", "NodeTemplateCatalog", "node_templates"]


class NodeTemplate(msgspec.Struct):
    type: str
    title: str
    description: str
    tags: list[str]
    category: str
    version: str
    use_cache: bool
    plugin: str
    output_type: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


def node_templates(registry: FrozenRegistry) -> list[NodeTemplate]:
    """One template per registered node type, sorted by type.

    The schemas are the ones in the OpenAPI components (generated once for both), so a
    ``$ref`` inside them points into ``/schema/openapi.json``'s ``components.schemas``. A registry with a node
    catalogue keeps the templates beside it; one restored from it reads them back without importing a node class.
    """
    kept = registry.catalogue.read_part("templates") if registry.catalogue is not None else None
    if kept is not None:
        return msgspec.json.decode(kept, type=list[NodeTemplate])
    templates = _built_templates(registry)
    if registry.catalogue is not None:
        registry.catalogue.write_part("templates", msgspec.json.encode(templates))
    return templates


def _built_templates(registry: FrozenRegistry) -> list[NodeTemplate]:
    components = registry_components(registry)
    templates = []
    for type_id, reg in registry.invocations.items():
        info = reg.value.invocation_info()
        assert info is not None
        output = registry.output_of(type_id)
        out_info = output.output_info()
        assert out_info is not None
        templates.append(
            NodeTemplate(
                type=type_id,
                title=info.title,
                description=info.description,
                tags=list(info.tags),
                category=info.category,
                version=info.version,
                use_cache=info.use_cache,
                plugin=reg.plugin,
                output_type=out_info.type,
                inputs=components.schema_of(reg.value),
                outputs=components.schema_of(output),
            )
        )
    return templates


class NodeTemplateCatalog:
    """The templates of one frozen registry, built on first use and then kept: the registry never changes.

    Built lazily so a server that nobody asks for its node list does not pay for it at start-up.
    """

    def __init__(self, registry: FrozenRegistry) -> None:
        self._registry = registry

    @cached_property
    def templates(self) -> list[NodeTemplate]:
        """One template per registered node type, sorted by type (:func:`node_templates`)."""
        return node_templates(self._registry)
