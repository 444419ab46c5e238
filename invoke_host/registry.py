"""Steps 2 and 3 of start-up: collect what plugins register, then freeze it once.

Everything that validates graphs or builds the API reads the :class:`FrozenRegistry`; nothing
can register after the freeze, so no import order can leave a node out of the unions.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Annotated, Any, Generic, TypeVar, Union

from invoke_sdk import BaseInvocation, BaseInvocationOutput
from invoke_sdk.events import CORE_EVENTS, BaseEvent, EventSink
from invoke_sdk.fields import field_extra
from invoke_sdk.images import IMAGE_EVENTS, FileStorageBackendFactory
from invoke_sdk.storage import StorageBackendFactory
from pydantic import Field, TypeAdapter, ValidationError
from pydantic.json_schema import models_json_schema

from invoke_host.models.contributions import (
    check_model_config,
    check_model_prober,
    model_config_adapter,
    model_config_key,
    ordered_probers,
)
from invoke_host.plugin_loader import PluginRecord, PluginSet
from invoke_host.plugin_routes import Route, RouteTable, resolve_routes

__all__ = [
    "HOST_EVENTS",
    "KINDS",
    "FrozenRegistry",
    "Kind",
    "Registered",
    "RegistrationError",
    "check_invocation_class",
    "collect",
    "invocation_output_class",
]

logger = logging.getLogger("invoke_host.registry")

T = TypeVar("T")


class RegistrationError(ValueError):
    """A contribution the registry refuses (a bad class, a conflict); the message says which and why."""


@dataclass(frozen=True)
class Registered(Generic[T]):
    """One registered thing and the plugin that gave it."""

    key: str
    value: T
    plugin: str


def _name(cls: Any) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', repr(cls))}"


def invocation_output_class(cls: type[BaseInvocation]) -> type[BaseInvocationOutput]:
    """The output class named by a node's ``invoke`` return annotation, checked."""
    try:
        hints = typing.get_type_hints(cls.invoke)
    except Exception as exc:
        raise RegistrationError(f"the return annotation of {_name(cls)}.invoke() cannot be resolved: {exc}") from exc
    out = hints.get("return")
    if not (isinstance(out, type) and issubclass(out, BaseInvocationOutput) and out.output_info() is not None):
        raise RegistrationError(
            f"{_name(cls)}.invoke() must be annotated to return a class decorated with @invocation_output, "
            f"not {out!r}"
        )
    return out


def _check_model(cls: type[Any]) -> None:
    try:
        # Builds the deferred schema once; later unions and adapters reuse it.
        cls.model_rebuild()
    except Exception as exc:
        raise RegistrationError(f"{_name(cls)} is not a valid pydantic model: {exc}") from exc
    defaults: dict[str, Any] = {}
    for name, info in cls.model_fields.items():
        if field_extra(info).get("orig_required"):
            continue
        if info.default_factory is not None:
            defaults[name] = info.default_factory()  # type: ignore[call-arg]
        elif not info.is_required():
            defaults[name] = info.default
    try:
        cls.model_validate(defaults)
    except ValidationError as exc:
        # Required fields are absent on purpose; only the defaults that were given are judged.
        errors = [err for err in exc.errors() if err["type"] != "missing"]
        if errors:
            bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
            raise RegistrationError(f"{_name(cls)} has a default that does not fit its field ({bad})") from exc


def check_invocation_class(cls: Any) -> type[BaseInvocationOutput]:
    """Refuse a class that cannot be a node; return its output class."""
    if not (isinstance(cls, type) and issubclass(cls, BaseInvocation)):
        raise RegistrationError(f"{cls!r} is not a BaseInvocation subclass")
    if cls.invocation_info() is None:
        raise RegistrationError(f"{_name(cls)} has no node type: decorate it with @invocation('<type id>')")
    if cls.invoke is BaseInvocation.invoke:
        raise RegistrationError(f"{_name(cls)} does not implement invoke()")
    output = invocation_output_class(cls)
    _check_model(cls)
    _check_model(output)
    return output


@dataclass(frozen=True)
class Kind:
    """A kind of contribution other than nodes: the hook that offers it and how it is keyed and checked.

    Two contributions of one kind with the same key conflict: the first registered stays and the
    second is refused with a message naming both plugins.
    """

    hook: str
    name: str
    key: Callable[[Any], str]
    check: Callable[[Any], None] | None = None


def _route_key(handler: Any) -> str:
    paths = sorted(getattr(handler, "paths", None) or [getattr(handler, "path", repr(handler))])
    methods = sorted(getattr(handler, "http_methods", None) or [])
    return f"{','.join(methods)} {','.join(map(str, paths))}".strip()


def _model_loader_key(loader: Any) -> str:
    from invoke_sdk.models.loading import loader_key

    return loader_key(loader.model_type, loader.model_format)


def _check_model_loader(loader: Any) -> None:
    from invoke_sdk.models.loading import ModelLoader

    if isinstance(loader, type) or not isinstance(loader, ModelLoader):
        raise RegistrationError(
            f"{loader!r} is not a model loader: register an instance with model_type, model_format, "
            "load(config, submodel, *, dtype) and device_available(device)"
        )
def _check_storage_backend(factory: Any) -> None:
    if not (isinstance(factory, StorageBackendFactory) and factory.name and callable(factory.create)):
        raise RegistrationError(f"{factory!r} is not a StorageBackendFactory with a name and a create function")


def _check_file_storage_backend(factory: Any) -> None:
    if not (isinstance(factory, FileStorageBackendFactory) and factory.name and callable(factory.create)):
        raise RegistrationError(f"{factory!r} is not a FileStorageBackendFactory with a name and a create function")


HOST_EVENTS: tuple[type[BaseEvent], ...] = (*CORE_EVENTS, *IMAGE_EVENTS)
"""The events the host itself emits (queue, nodes, images): always in the OpenAPI document, names reserved."""


def _check_event(cls: Any) -> None:
    if not (isinstance(cls, type) and issubclass(cls, BaseEvent)):
        raise RegistrationError(f"{cls!r} is not a BaseEvent subclass")
    name = cls.__dict__.get("event_name")
    if not isinstance(name, str) or not name:
        raise RegistrationError(f"{_name(cls)} sets no event_name of its own")
    core = next((c for c in HOST_EVENTS if c.event_name == name), None)
    if core is not None and core is not cls:
        raise RegistrationError(f"event name {name!r} of {_name(cls)} belongs to the host's {_name(core)}")


def _check_event_sink(sink: Any) -> None:
    if not isinstance(sink, EventSink) or not isinstance(sink.name, str) or not sink.name:
        raise RegistrationError(f"{sink!r} is not an EventSink (name, start, stop, deliver)")


KINDS: list[Kind] = [
    Kind(hook="register_routes", name="routes", key=_route_key),
    Kind(hook="register_model_configs", name="model_configs", key=model_config_key, check=check_model_config),
    Kind(hook="register_model_probers", name="model_probers", key=lambda p: p.name, check=check_model_prober),
    Kind(hook="register_model_loaders", name="model_loaders", key=_model_loader_key, check=_check_model_loader),
    Kind(hook="register_storage_backends", name="storage_backends", key=lambda f: f.name, check=_check_storage_backend),
    Kind(hook="register_events", name="events", key=lambda c: c.__dict__["event_name"], check=_check_event),
    Kind(hook="register_event_sinks", name="event_sinks", key=lambda s: s.name, check=_check_event_sink),
    Kind(
        hook="register_file_storage_backends",
        name="file_storage_backends",
        key=lambda f: f.name,
        check=_check_file_storage_backend,
    ),
]
"""Every non-node kind of contribution, in the order their hooks are called."""


@dataclass
class _Stage:
    """What one plugin offered during collection; committed only if all its hooks succeeded."""

    invocations: list[type[BaseInvocation]] = field(default_factory=list)
    offered: dict[str, list[Any]] = field(default_factory=dict)


def _tagged_union(classes: list[type[Any]]) -> Any:
    if len(classes) == 1:
        return classes[0]
    return Annotated[Union[tuple(classes)], Field(discriminator="type")]  # noqa: UP007 - built at run time


@dataclass(frozen=True)
class FrozenRegistry:
    """The immutable result of collection, with the unions and adapters built once."""

    plugins: tuple[PluginRecord, ...]
    invocations: Mapping[str, Registered[type[BaseInvocation]]]
    outputs: Mapping[str, Registered[type[BaseInvocationOutput]]]
    output_classes: Mapping[str, type[BaseInvocationOutput]]
    contributions: Mapping[str, Mapping[str, Registered[Any]]]
    invocation_union: Any
    output_union: Any
    invocation_adapter: TypeAdapter[Any] | None
    output_adapter: TypeAdapter[Any] | None

    def kind(self, name: str) -> Mapping[str, Registered[Any]]:
        """Everything registered of one kind (see :data:`KINDS`), by key, in registration order."""
        return self.contributions.get(name, MappingProxyType({}))

    @property
    def routes(self) -> list[Any]:
        """Route handlers that plugins contributed."""
        return [r.value for r in self.kind("routes").values()]

    @cached_property
    def events(self) -> Mapping[str, type[BaseEvent]]:
        """Every event class by name: the host's own (:data:`HOST_EVENTS`) and what plugins registered, sorted."""
        found = {cls.event_name: cls for cls in HOST_EVENTS}
        found.update({key: r.value for key, r in self.kind("events").items()})
        return MappingProxyType({k: found[k] for k in sorted(found)})

    @cached_property
    def event_union(self) -> Any:
        """The union of every event model (built at the freeze)."""
        return Union[tuple(self.events.values())]  # noqa: UP007 - built at run time

    @cached_property
    def event_adapter(self) -> TypeAdapter[Any]:
        """A TypeAdapter of :attr:`event_union`."""
        return TypeAdapter(self.event_union)

    def output_of(self, invocation_type: str) -> type[BaseInvocationOutput]:
        """The output class of a registered node type (resolved once, at registration)."""
        return self.output_classes[invocation_type]

    @cached_property
    def json_schemas(self) -> dict[str, Any]:
        """JSON Schemas of every node and output (named ``$ref``s into ``#/components/schemas``).

        Built on first use, not at start-up: only the OpenAPI document and node templates need it.
        """
        models: list[tuple[type[Any], Any]] = [(r.value, "validation") for r in self.invocations.values()]
        models += [(r.value, "validation") for r in self.outputs.values()]
        models += [(r.value, "validation") for r in self.kind("model_configs").values()]
        models += [(cls, "validation") for cls in self.events.values()]
        keys, top = models_json_schema(models, ref_template="#/components/schemas/{model}")
        refs = {cls: schema["$ref"] for (cls, _mode), schema in keys.items()}
        components: dict[str, Any] = dict(top.get("$defs", {}))
        components["AnyInvocation"] = _one_of(
            {t: refs[r.value] for t, r in self.invocations.items()}
        )
        components["AnyInvocationOutput"] = _one_of({t: refs[r.value] for t, r in self.outputs.items()})
        # Model configs are told apart by type and format together: no single discriminator property.
        components["AnyModelConfig"] = {
            "oneOf": [{"$ref": refs[r.value]} for _, r in sorted(self.kind("model_configs").items())],
            "description": "A model config; the class is chosen by the pair (type, format).",
        }
        components.update(_event_message_schemas({name: refs[cls] for name, cls in self.events.items()}))
        return {"components": components, "refs": refs}

    @cached_property
    def model_config_adapter(self) -> TypeAdapter[Any] | None:
        """The TypeAdapter of the union of every registered model config (on type + format), built once."""
        return model_config_adapter(r.value for r in self.kind("model_configs").values())

    @cached_property
    def model_probers(self) -> list[Any]:
        """Registered model probers in the order they are asked (order, then name)."""
        return ordered_probers(r.value for r in self.kind("model_probers").values())

    def schema_ref(self, cls: type[Any]) -> str:
        """The ``$ref`` of a registered node or output class in the OpenAPI components."""
        return str(self.json_schemas["refs"][cls])


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


def _call_hook(plugin: Any, hook: str, register: Callable[[Any], None], manager: Any) -> None:
    caller = getattr(manager.hook, hook)
    for impl in caller.get_hookimpls():
        if impl.plugin is plugin:
            impl.function(**{name: register for name in impl.argnames})


def _plugin_error(exc: BaseException) -> BaseException:
    """``exc`` if one plugin's failure may be recorded and passed over; re-raises what must stop the host."""
    # SystemExit, GeneratorExit ... from plugin code are that plugin's failure; only the user's Ctrl-C stops start-up.
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    return exc


def _held_by(record: PluginRecord, holder: PluginRecord, what: str = "it") -> str:
    """The end of a refusal: who keeps the name, why they come first, and how the user can choose otherwise."""
    if holder.first_party and not record.first_party:
        why = f"{holder.describe()} registered {what}; first-party plugins load before every pack and keep their names"
    else:
        why = f"{holder.describe()} registered {what} first"
        if holder.source == "entry_point" and record.source == "entry_point":
            why += " (packs load in order of distribution name)"
    if holder.source == "entry_point":
        why += f"; to use this one instead, block that one with INVOKE_HOST_PLUGINS_BLOCK={holder.name}"
    return why


def _check_invocation(
    cls: Any,
    record: PluginRecord,
    invocations: Mapping[str, Registered[type[BaseInvocation]]],
    outputs: Mapping[str, Registered[type[BaseInvocationOutput]]],
    by_name: Mapping[str, PluginRecord],
) -> tuple[str, type[BaseInvocationOutput], str]:
    """(type id, output class, output type id) of a node class that may be registered; else RegistrationError."""
    output = check_invocation_class(cls)
    info = cls.invocation_info()
    assert info is not None
    if (have := invocations.get(info.type)) is not None:
        raise RegistrationError(
            f"node type {info.type!r} from {record.describe()} is refused: {_held_by(record, by_name[have.plugin])}"
        )
    out_info = output.output_info()
    assert out_info is not None
    known = outputs.get(out_info.type)
    if known is not None and known.value is not output:
        raise RegistrationError(
            f"node type {info.type!r} from {record.describe()} is refused: its output type "
            f"{out_info.type!r} is already registered by {by_name[known.plugin].describe()} for another class"
        )
    return info.type, output, out_info.type


def _check_routes(
    item: Any, record: PluginRecord, table: RouteTable, by_name: Mapping[str, PluginRecord]
) -> list[Route]:
    """The routes of ``item`` if none reaches into the host's paths or overlaps one taken; else RegistrationError."""
    try:
        routes = resolve_routes(item)
    except ValueError as exc:
        raise RegistrationError(f"a route from {record.describe()} is refused: {exc}") from exc
    problems = []
    for route in routes:
        refusal = table.refusal(route)
        if refusal is not None:
            why, holder = refusal
            if holder is not None:
                why = _held_by(record, by_name[holder], why)
            problems.append(f"route {route.label()} from {record.describe()} is refused: {why}")
    if problems:
        if len(routes) > 1:
            # A router or controller is one registration: one bad route keeps all of its routes out.
            others = ", ".join(r.label() for r in routes)
            problems = [f"{p} (with the rest of its router: {others})" for p in problems]
        raise RegistrationError("\n".join(problems))
    return routes


def collect(plugin_set: PluginSet, core_routes: Sequence[Any] = ()) -> FrozenRegistry:
    """Run every plugin's ``register_*`` hooks, plugin by plugin, and freeze the result.

    ``core_routes`` are the app's own route handlers: plugin routes that reach into their paths are refused
    (see :mod:`invoke_host.plugin_routes`).
    """
    invocations: dict[str, Registered[type[BaseInvocation]]] = {}
    outputs: dict[str, Registered[type[BaseInvocationOutput]]] = {}
    contributions: dict[str, dict[str, Registered[Any]]] = {kind.name: {} for kind in KINDS}
    output_classes: dict[str, type[BaseInvocationOutput]] = {}
    # Loaded plugins have unique names; a failed record may share one (a second entry point named alike).
    by_name = {r.name: r for r in plugin_set.records if r.status == "loaded"}
    route_table: RouteTable | None = None

    def refuse(record: PluginRecord, exc: BaseException, what: str) -> None:
        message = str(exc) if isinstance(exc, RegistrationError) else (
            f"{what} from {record.describe()} is refused: checking it raised {type(exc).__name__}: {exc}"
        )
        for line in message.splitlines():
            record.refused.append(line)
            logger.warning("%s", line if record.describe() in line else f"{record.describe()}: {line}")

    for record, plugin in plugin_set.loaded():
        stage = _Stage()
        try:
            _call_hook(plugin, "register_invocations", stage.invocations.append, plugin_set.manager)
            for kind in KINDS:
                _call_hook(plugin, kind.hook, stage.offered.setdefault(kind.name, []).append, plugin_set.manager)
        except BaseException as exc:  # noqa: BLE001 - one plugin's hook must not stop the host; Ctrl-C re-raised
            record.fail("registration hook", _plugin_error(exc))
            plugin_set.manager.unregister(name=record.name)
            continue

        for cls in stage.invocations:
            try:
                type_id, output, output_type = _check_invocation(cls, record, invocations, outputs, by_name)
            except BaseException as exc:  # noqa: BLE001 - checking runs plugin code (defaults, annotations)
                refuse(record, _plugin_error(exc), f"node class {cls!r}")
                continue
            invocations[type_id] = Registered(type_id, cls, record.name)
            output_classes[type_id] = output
            if output_type not in outputs:
                outputs[output_type] = Registered(output_type, output, record.name)
                record.registered.setdefault("outputs", []).append(output_type)
            record.registered.setdefault("invocations", []).append(type_id)
        for kind in KINDS:
            table = contributions[kind.name]
            for item in stage.offered.get(kind.name, []):
                try:
                    if kind.check is not None:
                        kind.check(item)
                    key = kind.key(item)
                    routes: list[Route] | None = None
                    if kind.name == "routes":
                        route_table = route_table or RouteTable.for_core(core_routes)
                        routes = _check_routes(item, record, route_table, by_name)
                    if (have_item := table.get(key)) is not None:
                        raise RegistrationError(
                            f"{kind.name} {key!r} from {record.describe()} is refused: "
                            f"{_held_by(record, by_name[have_item.plugin])}"
                        )
                except BaseException as exc:  # noqa: BLE001 - checks and keys run plugin code too
                    refuse(record, _plugin_error(exc), f"{kind.name} {item!r}")
                    continue
                if routes is not None and route_table is not None:
                    route_table.accept(routes, record.name)
                table[key] = Registered(key, item, record.name)
                record.registered.setdefault(kind.name, []).append(key)

    # Sorted by type id: pluggy calls last-registered-first and entry points follow the file system.
    inv_sorted = {k: invocations[k] for k in sorted(invocations)}
    out_sorted = {k: outputs[k] for k in sorted(outputs)}
    inv_classes: list[type[Any]] = [r.value for r in inv_sorted.values()]
    out_classes: list[type[Any]] = [r.value for r in out_sorted.values()]
    inv_union = _tagged_union(inv_classes) if inv_classes else None
    out_union = _tagged_union(out_classes) if out_classes else None
    registry = FrozenRegistry(
        plugins=tuple(plugin_set.records),
        invocations=MappingProxyType(inv_sorted),
        outputs=MappingProxyType(out_sorted),
        output_classes=MappingProxyType(output_classes),
        contributions=MappingProxyType({k: MappingProxyType(v) for k, v in contributions.items()}),
        invocation_union=inv_union,
        output_union=out_union,
        invocation_adapter=TypeAdapter(inv_union) if inv_union is not None else None,
        output_adapter=TypeAdapter(out_union) if out_union is not None else None,
    )
    # Built now, not on first use, so a config class that breaks the union fails start-up loudly.
    _ = registry.model_config_adapter
    _ = registry.event_adapter
    logger.info(
        "Registry frozen: %d plugins loaded, %d failed, %d node types, %d output types",
        sum(r.status == "loaded" for r in plugin_set.records),
        sum(r.status == "failed" for r in plugin_set.records),
        len(inv_sorted),
        len(out_sorted),
    )
    return registry
