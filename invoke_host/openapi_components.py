"""The registry's models as OpenAPI components: every node, output, model config and event, and their unions.

Generated in one pass on first use (the OpenAPI document and the node templates need them; start-up does not),
then kept for the registry's lifetime: the registry is frozen, so they never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from pydantic.json_schema import models_json_schema

from invoke_host.registry import FrozenRegistry

__all__ = ["RegistryComponents", "registry_components"]

REF_TEMPLATE = "#/components/schemas/{model}"


@dataclass(frozen=True)
class RegistryComponents:
    """JSON Schemas of a registry's models, named ``$ref``s into ``#/components/schemas``."""

    components: dict[str, Any]
    """Component name -> schema: each model, and ``AnyInvocation``, ``AnyInvocationOutput``, ``AnyModelConfig``,
    one ``<Event>Message`` per event and ``AnyEventMessage``."""
    refs: dict[type[Any], str]
    """Model class -> its ``$ref``."""

    def ref(self, cls: type[Any]) -> str:
        """The ``$ref`` of a registered node, output, model config or event class."""
        return self.refs[cls]

    def schema_of(self, cls: type[Any]) -> dict[str, Any]:
        """The component schema of a registered class."""
        schema: dict[str, Any] = self.components[self.ref(cls).rsplit("/", 1)[1]]
        return schema


_built: WeakKeyDictionary[FrozenRegistry, RegistryComponents] = WeakKeyDictionary()


def registry_components(registry: FrozenRegistry) -> RegistryComponents:
    """The components of ``registry``, generated on the first call and kept as long as the registry lives."""
    found = _built.get(registry)
    if found is None:
        found = _built[registry] = _generate(registry)
    return found


def _generate(registry: FrozenRegistry) -> RegistryComponents:
    models: list[tuple[type[Any], Any]] = [(r.value, "validation") for r in registry.invocations.values()]
    models += [(r.value, "validation") for r in registry.outputs.values()]
    models += [(r.value, "validation") for r in registry.kind("model_configs").values()]
    models += [(cls, "validation") for cls in registry.events.values()]
    keys, top = models_json_schema(models, ref_template=REF_TEMPLATE)
    refs = {cls: schema["$ref"] for (cls, _mode), schema in keys.items()}
    components: dict[str, Any] = dict(top.get("$defs", {}))
    components["AnyInvocation"] = _one_of({t: refs[r.value] for t, r in registry.invocations.items()})
    components["AnyInvocationOutput"] = _one_of({t: refs[r.value] for t, r in registry.outputs.items()})
    # Model configs are told apart by type and format together: no single discriminator property.
    components["AnyModelConfig"] = {
        "oneOf": [{"$ref": refs[r.value]} for _, r in sorted(registry.kind("model_configs").items())],
        "description": "A model config; the class is chosen by the pair (type, format).",
    }
    components.update(_event_message_schemas({name: refs[cls] for name, cls in registry.events.items()}))
    return RegistryComponents(components=components, refs=refs)


def _one_of(mapping: dict[str, str]) -> dict[str, Any]:
    return {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "type", "mapping": dict(mapping)},
    }


def _event_message_schemas(refs: dict[str, str]) -> dict[str, Any]:
    """``{"event": name, "data": payload}`` schemas, one per event, and ``AnyEventMessage`` over all of them."""
    components: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    for name, ref in refs.items():
        message = f"{ref.rsplit('/', 1)[-1]}Message"
        components[message] = {
            "type": "object",
            "title": message,
            "properties": {"event": {"type": "string", "const": name}, "data": {"$ref": ref}},
            "required": ["event", "data"],
        }
        mapping[name] = f"#/components/schemas/{message}"
    components["AnyEventMessage"] = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "event", "mapping": mapping},
    }
    return components
