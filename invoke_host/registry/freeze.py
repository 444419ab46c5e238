"""Step 3 of start-up: the collected tables become a :class:`FrozenRegistry`, with its adapters.

Everything that validates graphs or builds the API reads the frozen registry; nothing can register after
the freeze, so no import order can leave a node out of validation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any, Union

from invoke_sdk import BaseInvocation, BaseInvocationOutput
from invoke_sdk.events import BaseEvent
from pydantic import TypeAdapter

from invoke_host.plugin_loader import PluginRecord
from invoke_host.registry.host_events import HOST_EVENTS
from invoke_host.registry.model_contributions import model_config_adapter, ordered_probers
from invoke_host.registry.node_catalogue import NodeCatalogue
from invoke_host.registry.registered import Registered
from invoke_host.registry.registered_classes import RegisteredClasses
from invoke_host.registry.type_dispatch import TypeDispatch

__all__ = ["FrozenRegistry", "Registered", "freeze"]

logger = logging.getLogger("invoke_host.registry")


@dataclass(frozen=True, eq=False)
class FrozenRegistry:
    """The immutable result of collection, with its adapters built once.

    Compared and hashed by identity: one freeze is one registry, so what is derived from it (the OpenAPI
    components, say) can be kept per registry.
    """

    plugins: tuple[PluginRecord, ...]
    invocations: RegisteredClasses[type[BaseInvocation]]
    """Node classes by type id, sorted; restored from the node catalogue, a class is imported on first use."""
    outputs: RegisteredClasses[type[BaseInvocationOutput]]
    """Output classes by type id, sorted; imported on first use as :attr:`invocations` are."""
    output_types: Mapping[str, str]
    """Node type id -> the type id of its output."""
    contributions: Mapping[str, Mapping[str, Registered[Any]]]
    catalogue: NodeCatalogue | None = None
    """The node catalogue this registry was restored from or written to: documents derived from the registry (the
    OpenAPI components, the node templates) are kept beside it, so a restart need not import every class for them."""

    # Validation by the class each value's ``type`` names: a union adapter of 1,000 node types took 0.1 s to build
    # and, with the catalogue, would import every pack's classes.
    @cached_property
    def invocation_adapter(self) -> TypeDispatch | None:
        """Validates a node given as data by the class its ``type`` names (None with no node type)."""
        return TypeDispatch(self.invocations, "AnyInvocation") if self.invocations else None  # type: ignore[arg-type]

    @cached_property
    def output_adapter(self) -> TypeDispatch | None:
        """Validates an output given as data by the class its ``type`` names (None with no output type)."""
        return TypeDispatch(self.outputs, "AnyInvocationOutput") if self.outputs else None  # type: ignore[arg-type]

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
        """The output class of a registered node type (imported on first use when restored from the catalogue)."""
        return self.outputs[self.output_types[invocation_type]].value

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
    invocations: RegisteredClasses[type[BaseInvocation]],
    outputs: RegisteredClasses[type[BaseInvocationOutput]],
    output_types: Mapping[str, str],
    contributions: Mapping[str, Mapping[str, Registered[Any]]],
    catalogue: NodeCatalogue | None = None,
) -> FrozenRegistry:
    """The read-only registry of what collection accepted, with the model config and event adapters built now:
    they can still fail (a plugin's config or event class that breaks its union)."""
    registry = FrozenRegistry(
        plugins=tuple(plugins),
        invocations=invocations.sorted(),
        outputs=outputs.sorted(),
        output_types=MappingProxyType(dict(output_types)),
        contributions=MappingProxyType({k: MappingProxyType(dict(v)) for k, v in contributions.items()}),
        catalogue=catalogue if catalogue is not None and catalogue.key is not None else None,
    )
    # Built now, not on first use, so a config class that breaks the union fails start-up loudly.
    _ = registry.model_config_adapter
    _ = registry.event_adapter
    logger.info(
        "Registry frozen: %d plugins loaded, %d failed, %d node types, %d output types",
        sum(r.status == "loaded" for r in plugins),
        sum(r.status == "failed" for r in plugins),
        len(registry.invocations),
        len(registry.outputs),
    )
    return registry
