"""The registry's models as OpenAPI components: every node, output, model config and event, and their unions.

Generated in one pass on first use (the OpenAPI document and the node templates need them; start-up does not),
then kept for the registry's lifetime: the registry is frozen, so they never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from weakref import WeakKeyDictionary

from pydantic import ConfigDict, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from invoke_host.registry import FrozenRegistry

__all__ = ["RegistryComponents", "SharedAdaptersJsonSchema", "generate_components", "registry_components"]

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


_SCALARS = (bool, int, float, str, type(None))
_TEMPORAL_KEYS = ("ser_json_temporal", "ser_json_timedelta")
"""Config keys pydantic leaves out when it encodes a default for a validation schema."""


class SharedAdaptersJsonSchema(GenerateJsonSchema):
    """pydantic's JSON Schema generator, with one ``TypeAdapter`` per scalar type and model config for defaults.

    pydantic's ``encode_default`` builds ``TypeAdapter(type(default), config=<the model's config>)`` anew for
    every field default it writes: with 1,000 node types (8,000 defaults) that was half of the OpenAPI
    document's time (bench/startup.py). Here a scalar default (bool, int, float, str, None) is dumped by the
    adapter pydantic would build, made once per type, config and mode; any other default goes to pydantic as
    before. tests/test_registry_freeze.py holds the result to pydantic's plain generator's.
    """

    def __init__(self, by_alias: bool = True, ref_template: str = REF_TEMPLATE, **kwargs: Any) -> None:
        super().__init__(by_alias=by_alias, ref_template=ref_template, **kwargs)
        self._adapters: dict[tuple[Any, ...], TypeAdapter[Any]] = {}
        self._config_keys: dict[int, tuple[Any, tuple[Any, ...]]] = {}

    def encode_default(self, dft: Any) -> Any:
        if type(dft) not in _SCALARS:
            return super().encode_default(dft)
        config = self._config.config_dict
        key = (self._config_key(config), self.mode, type(dft))
        adapter = self._adapters.get(key)
        if adapter is None:
            # As pydantic does: temporal formats are not applied to validation schemas, so not to their defaults.
            if self.mode == "validation" and any(k in config for k in _TEMPORAL_KEYS):
                config = cast(ConfigDict, {k: v for k, v in config.items() if k not in _TEMPORAL_KEYS})
            adapter = self._adapters[key] = TypeAdapter(type(dft), config=config)
        return adapter.dump_python(dft, by_alias=self.by_alias, mode="json")

    def _config_key(self, config: ConfigDict) -> tuple[Any, ...]:
        # Worked out once per config dict; the dict is kept with its key, so its id is not reused meanwhile.
        found = self._config_keys.get(id(config))
        if found is None or found[0] is not config:
            found = self._config_keys[id(config)] = (config, tuple(sorted((k, repr(v)) for k, v in config.items())))
        return found[1]


# Kept per registry, weakly: a registry that is dropped (tests build hundreds) takes its components with it.
_built: WeakKeyDictionary[FrozenRegistry, RegistryComponents] = WeakKeyDictionary()


def registry_components(registry: FrozenRegistry) -> RegistryComponents:
    """The components of ``registry``, generated on the first call and kept as long as the registry lives."""
    found = _built.get(registry)
    if found is None:
        found = _built[registry] = generate_components(registry)
    return found


def generate_components(
    registry: FrozenRegistry, schema_generator: type[GenerateJsonSchema] = SharedAdaptersJsonSchema
) -> RegistryComponents:
    """The components of ``registry``, generated now in one pass over its models (registry_components keeps them)."""
    models: list[tuple[type[Any], Any]] = [(r.value, "validation") for r in registry.invocations.values()]
    models += [(r.value, "validation") for r in registry.outputs.values()]
    models += [(r.value, "validation") for r in registry.kind("model_configs").values()]
    models += [(cls, "validation") for cls in registry.events.values()]
    keys, top = models_json_schema(models, ref_template=REF_TEMPLATE, schema_generator=schema_generator)
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
