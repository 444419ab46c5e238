"""Step 3 of start-up: the collected tables become a :class:`FrozenRegistry`, with its unions and adapters.

Everything that validates graphs or builds the API reads the frozen registry; nothing can register after
the freeze, so no import order can leave a node out of the unions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Annotated, Any, Generic, TypeVar, Union

from invoke_sdk import BaseInvocation, BaseInvocationOutput
from invoke_sdk.events import BaseEvent
from pydantic import Field, TypeAdapter

from invoke_host.plugin_loader import PluginRecord
from invoke_host.registry.host_events import HOST_EVENTS
from invoke_host.registry.model_contributions import model_config_adapter, ordered_probers

__all__ = ["FrozenRegistry", "Registered", "freeze"]

logger = logging.getLogger("invoke_host.registry")

T = TypeVar("T")


@dataclass(frozen=True)
class Registered(Generic[T]):
    """One registered thing and the plugin that gave it."""

    key: str
    value: T
    plugin: str


def _tagged_union(classes: list[type[Any]]) -> Any:
    if len(classes) == 1:
        return classes[0]
    return Annotated[Union[tuple(classes)], Field(discriminator="type")]  # noqa: UP007 - built at run time


@dataclass(frozen=True, eq=False)
class FrozenRegistry:
    """The immutable result of collection, with the unions and adapters built once.

    Compared and hashed by identity: one freeze is one registry, so what is derived from it (the OpenAPI
    components, say) can be kept per registry.
    """

    plugins: tuple[PluginRecord, ...]
    invocations: Mapping[str, Registered[type[BaseInvocation]]]
    outputs: Mapping[str, Registered[type[BaseInvocationOutput]]]
    output_classes: Mapping[str, type[BaseInvocationOutput]]
    contributions: Mapping[str, Mapping[str, Registered[Any]]]
    invocation_union: Any
    output_union: Any

    # The two adapters are built on first use, not at the freeze, as the graph model over the same node union is
    # (invoke_host/graph/model.py): every class in them passed its own check (its schema built, its defaults
    # validated), and nothing before the first batch or stored session reads them (0.1 s of start-up with 1,000
    # node types; bench/startup.py).
    @cached_property
    def invocation_adapter(self) -> TypeAdapter[Any] | None:
        """A TypeAdapter of :attr:`invocation_union` (None with no node type), built on first use."""
        return TypeAdapter(self.invocation_union) if self.invocation_union is not None else None

    @cached_property
    def output_adapter(self) -> TypeAdapter[Any] | None:
        """A TypeAdapter of :attr:`output_union` (None with no output type), built on first use."""
        return TypeAdapter(self.output_union) if self.output_union is not None else None

    def kind(self, name: str) -> Mapping[str, Registered[Any]]:
        """Everything registered of one kind (see :data:`~invoke_host.registry.kinds.KINDS`), by key, in
        registration order."""
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
    def model_config_adapter(self) -> TypeAdapter[Any] | None:
        """The TypeAdapter of the union of every registered model config (on type + format), built once."""
        return model_config_adapter({key: r.value for key, r in self.kind("model_configs").items()})

    @cached_property
    def model_probers(self) -> list[Any]:
        """Registered model probers in the order they are asked (order, then name)."""
        return ordered_probers(r.value for r in self.kind("model_probers").values())


def freeze(
    plugins: Sequence[PluginRecord],
    invocations: Mapping[str, Registered[type[BaseInvocation]]],
    outputs: Mapping[str, Registered[type[BaseInvocationOutput]]],
    output_classes: Mapping[str, type[BaseInvocationOutput]],
    contributions: Mapping[str, Mapping[str, Registered[Any]]],
) -> FrozenRegistry:
    """The read-only registry of what collection accepted: its unions built now, and the model config and event
    adapters, which can still fail (a plugin's config or event class that breaks its union)."""
    # Sorted by type id: pluggy calls last-registered-first and entry points follow the file system.
    inv_sorted = {k: invocations[k] for k in sorted(invocations)}
    out_sorted = {k: outputs[k] for k in sorted(outputs)}
    inv_classes: list[type[Any]] = [r.value for r in inv_sorted.values()]
    out_classes: list[type[Any]] = [r.value for r in out_sorted.values()]
    inv_union = _tagged_union(inv_classes) if inv_classes else None
    out_union = _tagged_union(out_classes) if out_classes else None
    registry = FrozenRegistry(
        plugins=tuple(plugins),
        invocations=MappingProxyType(inv_sorted),
        outputs=MappingProxyType(out_sorted),
        output_classes=MappingProxyType(dict(output_classes)),
        contributions=MappingProxyType({k: MappingProxyType(dict(v)) for k, v in contributions.items()}),
        invocation_union=inv_union,
        output_union=out_union,
    )
    # Built now, not on first use, so a config class that breaks the union fails start-up loudly.
    _ = registry.model_config_adapter
    _ = registry.event_adapter
    logger.info(
        "Registry frozen: %d plugins loaded, %d failed, %d node types, %d output types",
        sum(r.status == "loaded" for r in plugins),
        sum(r.status == "failed" for r in plugins),
        len(inv_sorted),
        len(out_sorted),
    )
    return registry
