"""The registry's models as OpenAPI components: every node, output, model config and event, and their unions.

Generated in one pass on first use (the OpenAPI document and the node templates need them; start-up does not),
then kept for the registry's lifetime: the registry is frozen, so they never change.

Component names are a client's type names, so they must not depend on what else is installed. pydantic names a
model after its class and, when two classes share a name, renames *both* to module paths: one pack with an
``ImageResizeInvocation`` renamed the core node's component. Here every name comes from a key that cannot collide
(:func:`component_names`): a registered model is named from its registry key (``Invocation.img_resize``,
``Output.image_output``, ``ModelConfig.main.checkpoint``, ``Event.invocation_complete``), a model of the SDK or
the host keeps its class name (no pack can take it), and any other model is named within its own package
(``pack.my_pack.ColorMode``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, cast
from weakref import WeakKeyDictionary

import msgspec
from invoke_sdk.fields import FieldKind
from pydantic import ConfigDict, TypeAdapter
from pydantic.json_schema import CoreModeRef, DefsRef, GenerateJsonSchema, models_json_schema

from invoke_host.registry import FrozenRegistry

__all__ = [
    "CORE_PACKAGES",
    "RegistryComponents",
    "SharedAdaptersJsonSchema",
    "component_names",
    "generate_components",
    "registry_components",
]

REF_TEMPLATE = "#/components/schemas/{model}"
CORE_PACKAGES = frozenset({"invoke_sdk", "invoke_host"})
"""Top-level packages whose models keep their class names: no pack can define a class in them."""


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
        found = self.refs.get(cls)
        if found is None:
            # Components kept in the node catalogue come without their classes: a node or output is named from its
            # type id (component_names), so its class need not have been imported to fill in this table.
            found = _node_or_output_ref(cls)
            if found is None or found.rsplit("/", 1)[1] not in self.components:
                raise KeyError(cls)
        return found

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


def _node_or_output_ref(cls: type[Any]) -> str | None:
    info = cls.invocation_info() if hasattr(cls, "invocation_info") else None
    if info is not None:
        return REF_TEMPLATE.format(model=_NODE + info.type)
    out = cls.output_info() if hasattr(cls, "output_info") else None
    return REF_TEMPLATE.format(model=_OUTPUT + out.type) if out is not None else None


def _type_ref(cls: type[Any]) -> str:
    # The core ref pydantic gives a non-generic class (pydantic._internal._type_refs): module, qualname and id.
    return f"{cls.__module__}.{cls.__qualname__}:{id(cls)}"


def component_names(registry: FrozenRegistry) -> dict[type[Any], str]:
    """The component name of every registered model, made from its registry key (keys are unique per kind).

    Type ids, model keys and event names use only letters, digits, ``_``, ``-`` and ``.``, the characters OpenAPI
    allows in a component name; the kind in front keeps the kinds apart, and no class name contains a dot.
    """
    names: dict[type[Any], str] = {reg.value: _NODE + type_id for type_id, reg in registry.invocations.items()}
    names.update({reg.value: _OUTPUT + type_id for type_id, reg in registry.outputs.items()})
    names.update(_config_and_event_names(registry))
    return names


_NODE, _OUTPUT = "Invocation.", "Output."
"""What the names of node and output components start with; the type id follows."""


def _config_and_event_names(registry: FrozenRegistry) -> dict[type[Any], str]:
    """The component names of the model configs and events: classes the registry holds, never imported late."""
    configs = registry.kind("model_configs")
    names: dict[type[Any], str] = {reg.value: f"ModelConfig.{key}" for key, reg in configs.items()}
    names.update({cls: f"Event.{name}" for name, cls in registry.events.items()})
    return names


class _StableNames(GenerateJsonSchema):
    """Puts a stable name first among pydantic's choices for each definition (see the module docstring).

    pydantic picks the first choice no other schema claims; a stable name is claimed by one class only, so it is
    always picked. A pack's own model falls back to pydantic's module-qualified names (never the bare class name)
    only when the pack itself holds two classes of one name.
    """

    registered: ClassVar[dict[str, str]] = {}
    """Core ref -> name, for the registered models (set by :func:`_named`)."""

    def get_defs_ref(self, core_mode_ref: CoreModeRef) -> DefsRef:
        defs_ref = super().get_defs_ref(core_mode_ref)
        core_ref = core_mode_ref[0]
        choices = self._prioritized_defsref_choices[defs_ref]
        stable = self.registered.get(core_ref)
        if stable is None and "[" not in core_ref:  # generic models keep pydantic's names
            path = core_ref.rsplit(":", 1)[0]
            package = path.split(".", 1)[0]
            if package not in CORE_PACKAGES:
                stable = f"pack.{package}.{path.rsplit('.', 1)[-1]}"
        if stable is not None:
            # Without the bare class names (the first two choices): those are what another pack could share.
            self._prioritized_defsref_choices[defs_ref] = [DefsRef(stable), *choices[2:]]
        return defs_ref


def _named(generator: type[GenerateJsonSchema], names: dict[type[Any], str]) -> type[GenerateJsonSchema]:
    """``generator`` naming definitions stably, the registered ones as ``names`` says."""
    registered = {_type_ref(cls): name for cls, name in names.items()}
    return type(f"Stable{generator.__name__}", (_StableNames, generator), {"registered": registered})


# Kept per registry, weakly: a registry that is dropped (tests build hundreds) takes its components with it.
_built: WeakKeyDictionary[FrozenRegistry, RegistryComponents] = WeakKeyDictionary()


def registry_components(registry: FrozenRegistry) -> RegistryComponents:
    """The components of ``registry``, generated on the first call and kept as long as the registry lives.

    A registry with a node catalogue keeps them beside it, and one restored from that catalogue reads them back
    instead of importing every node class to generate them again.
    """
    found = _built.get(registry)
    if found is None:
        found = _kept_components(registry)
        if found is None:
            found = generate_components(registry)
            if registry.catalogue is not None:
                registry.catalogue.write_part("components", msgspec.json.encode(found.components))
        _built[registry] = found
    return found


def _kept_components(registry: FrozenRegistry) -> RegistryComponents | None:
    raw = registry.catalogue.read_part("components") if registry.catalogue is not None else None
    if raw is None:
        return None
    # Only the model configs and events are looked up by class here; nodes and outputs by their type ids.
    refs = {cls: REF_TEMPLATE.format(model=name) for cls, name in _config_and_event_names(registry).items()}
    return RegistryComponents(components=msgspec.json.decode(raw), refs=refs)


def generate_components(
    registry: FrozenRegistry, schema_generator: type[GenerateJsonSchema] = SharedAdaptersJsonSchema
) -> RegistryComponents:
    """The components of ``registry``, generated now in one pass over its models (registry_components keeps them)."""
    models: list[tuple[type[Any], Any]] = [(r.value, "validation") for r in registry.invocations.values()]
    models += [(r.value, "validation") for r in registry.outputs.values()]
    models += [(r.value, "validation") for r in registry.kind("model_configs").values()]
    models += [(cls, "validation") for cls in registry.events.values()]
    generator = _named(schema_generator, component_names(registry))
    keys, top = models_json_schema(models, ref_template=REF_TEMPLATE, schema_generator=generator)
    refs = {cls: schema["$ref"] for (cls, _mode), schema in keys.items()}
    components: dict[str, Any] = dict(top.get("$defs", {}))
    for name, schema in components.items():
        # Generators name their classes after the title (openapi-python-client does): a class name two packs
        # share would clash there too, so a stably named component is titled with its name.
        if "." in name:
            schema["title"] = name
    _add_node_template_keys(registry, components, refs)
    components["AnyInvocation"] = _one_of({t: refs[r.value] for t, r in registry.invocations.items()})
    components["AnyInvocationOutput"] = _one_of({t: refs[r.value] for t, r in registry.outputs.items()})
    # Model configs are told apart by type and format together: no single discriminator property.
    components["AnyModelConfig"] = {
        "oneOf": [{"$ref": refs[r.value]} for _, r in sorted(registry.kind("model_configs").items())],
        "description": "A model config; the class is chosen by the pair (type, format).",
    }
    components.update(_event_message_schemas({name: refs[cls] for name, cls in registry.events.items()}))
    return RegistryComponents(components=components, refs=refs)


_NODE_VERSION = {
    "type": "string",
    "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+$",
    "description": "The version of the node type this node was written for (absent: the installed one); older "
    "nodes are migrated, newer ones refused",
    "field_kind": FieldKind.NodeAttribute.value,
}


def _add_node_template_keys(
    registry: FrozenRegistry, components: dict[str, Any], refs: dict[type[Any], str]
) -> None:
    """The keys InvokeAI's node schemas carry beside JSON Schema, read by tools that build node templates from it.

    Its frontend takes a component with ``class: "invocation"`` as a node (``version``, ``node_pack``, ``category``,
    ``tags``, ``classification``, and ``output``: the ``$ref`` of what it returns) and ``class: "output"`` as an
    output; the fields already carry its per-field keys (``field_kind``, ``input``, ``ui_hidden``, ``orig_required``).
    """
    for type_id, reg in registry.invocations.items():
        info = reg.value.invocation_info()
        assert info is not None  # every registered node was declared with @invocation
        component = components[refs[reg.value].rsplit("/", 1)[1]]
        component.update({
            "class": "invocation",
            "version": info.version,
            "node_pack": reg.plugin,
            "category": info.category,
            "tags": list(info.tags),
            # A node that declares its classification (InvokeAI packs through invokeai-compat) keeps it.
            "classification": component.get("classification", "stable"),
            "output": {"$ref": refs[registry.output_of(type_id)]},
        })
        # The reserved key graphs carry (invoke_host.graph.migration): validation takes it off before the node.
        component = components[refs[reg.value].rsplit("/", 1)[1]]
        component["properties"] = {**component.get("properties", {}), "version": _NODE_VERSION}
    for reg in registry.outputs.values():
        components[refs[reg.value].rsplit("/", 1)[1]]["class"] = "output"


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
        message = f"EventMessage.{name}"
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
