"""Step 2 of start-up: run each plugin's ``register_*`` hooks and keep what passes its checks and conflicts.

A plugin's offers are staged and committed only if all its hooks ran; each offer is then checked on its
own (:mod:`invoke_host.registry.checks`) and against what earlier plugins registered: the first to take a
key keeps it, and the refusal names both plugins. The result is frozen (:mod:`invoke_host.registry.freeze`).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from invoke_sdk import BaseInvocation, BaseInvocationOutput
from invoke_sdk.static_assets import StaticAssets

from invoke_host.plugin_loader import PluginRecord, PluginSet
from invoke_host.plugin_routes import Route, RouteTable, resolve_routes
from invoke_host.registry.checks import check_node_class, check_output_class
from invoke_host.registry.errors import RegistrationError
from invoke_host.registry.freeze import FrozenRegistry, freeze
from invoke_host.registry.kinds import KINDS
from invoke_host.registry.node_catalogue import NodeCatalogue, PluginEntries, environment
from invoke_host.registry.registered import Registered
from invoke_host.registry.registered_classes import ClassSource, RegisteredClasses, source_of

__all__ = ["collect"]

logger = logging.getLogger("invoke_host.registry")


@dataclass
class _Stage:
    """What one plugin offered during collection; committed only if all its hooks succeeded."""

    invocations: list[type[BaseInvocation]] = field(default_factory=list)
    offered: dict[str, list[Any]] = field(default_factory=dict)


def _call_hook(plugin: Any, hook: str, register: Callable[[Any], None], manager: Any) -> None:
    caller = getattr(manager.hook, hook)
    for impl in caller.get_hookimpls():
        if impl.plugin is plugin:
            # Printing hooks (a pack importing its nodes lazily) must not corrupt JSON the CLI writes to stdout.
            with contextlib.redirect_stdout(sys.stderr):
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
    output = check_node_class(cls)
    out_info = output.output_info()
    assert out_info is not None
    known = outputs.get(out_info.type)
    if known is None or known.value is not output:
        # A registered output class passed this check already, for the first node that returned it.
        check_output_class(output)
    info = cls.invocation_info()
    assert info is not None
    if (have := invocations.get(info.type)) is not None:
        raise RegistrationError(
            f"node type {info.type!r} from {record.describe()} is refused: {_held_by(record, by_name[have.plugin])}"
        )
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
    problems = [f"route {route.label()} from {record.describe()} is refused: {why}"
                for route, why in _refusals(routes, record, table, by_name)]
    if problems:
        if len(routes) > 1:
            # A router or controller is one registration: one bad route keeps all of its routes out.
            others = ", ".join(r.label() for r in routes)
            problems = [f"{p} (with the rest of its router: {others})" for p in problems]
        raise RegistrationError("\n".join(problems))
    return routes


def _refusals(
    routes: list[Route], record: PluginRecord, table: RouteTable, by_name: Mapping[str, PluginRecord]
) -> list[tuple[Route, str]]:
    """Each of ``routes`` the table refuses, with why (naming the plugin that holds the path, if one does)."""
    found = []
    for route in routes:
        refusal = table.refusal(route)
        if refusal is not None:
            why, holder = refusal
            found.append((route, why if holder is None else _held_by(record, by_name[holder], why)))
    return found


def _check_static_paths(
    assets: StaticAssets, record: PluginRecord, table: RouteTable, by_name: Mapping[str, PluginRecord]
) -> list[Route]:
    """The paths a static folder would answer, judged as routes: public paths must not reach the host's or overlap
    a route taken (whose handler would then answer, or be shadowed, without the token)."""
    routes = [Route(f"{assets.path}/{{name:str}}", frozenset({"GET"})),
              *(Route(url, frozenset({"GET"})) for url in sorted(assets.pages))]
    problems = [f"static assets {assets.describe()} from {record.describe()} are refused: {route.label()} "
                f"would answer without the access token, but {why}"
                for route, why in _refusals(routes, record, table, by_name)]
    if problems:
        raise RegistrationError("\n".join(problems))
    return routes


def _check_migration_owner(
    migration: Any, record: PluginRecord, owners: Mapping[str, str], by_name: Mapping[str, PluginRecord],
) -> None:
    """Only the plugin whose node type it is may migrate it: another pack's migration would rewrite its graphs."""
    owner = owners.get(migration.node_type)
    if owner is None or owner != record.name:
        whose = f"it is {by_name[owner].describe()}'s" if owner is not None else "no plugin registered it"
        raise RegistrationError(
            f"node migration {migration.key!r} from {record.describe()} is refused: a plugin may migrate only the "
            f"node types it registers, and {whose}"
        )


def _restored_check(kind: str) -> Any:
    """The check of a class imported from the catalogue: the node or output type the catalogue recorded."""

    def check(cls: Any, source: ClassSource) -> None:
        info = getattr(cls, "invocation_info" if kind == "node" else "output_info", lambda: None)()
        if info is None or info.type != source.key:
            raise RegistrationError(f"it is not the {kind} class of type {source.key!r}")

    return check


def collect(
    plugin_set: PluginSet, core_routes: Sequence[Any] = (), catalogue: NodeCatalogue | None = None
) -> FrozenRegistry:
    """Run every plugin's ``register_*`` hooks, plugin by plugin, and freeze the result.

    ``core_routes`` are the app's own route handlers: plugin routes that reach into their paths are refused
    (see :mod:`invoke_host.plugin_routes`). With a ``catalogue`` that was written for exactly these plugins and
    files, no ``register_invocations`` hook runs: the node and output types come from the catalogue, and each
    class is imported when first asked for (:mod:`invoke_host.registry.node_catalogue`). Without one, or when it
    is out of date, the hooks run and the catalogue is written for the next start.
    """
    before = environment(plugin_set.records) if catalogue is not None else []
    loaded_before = [r.name for r in plugin_set.records if r.status == "loaded"]
    restored = catalogue.restore(plugin_set.records, before) if catalogue is not None else None
    invocations: dict[str, Registered[type[BaseInvocation]]] = {}
    outputs: dict[str, Registered[type[BaseInvocationOutput]]] = {}
    node_sources: dict[str, ClassSource] = {}
    output_sources: dict[str, ClassSource] = {}
    owners: dict[str, str] = {}  # node type -> plugin, restored or collected
    output_types: dict[str, str] = {}  # node type -> its output type
    node_refusals: dict[str, list[str]] = {}
    contributions: dict[str, dict[str, Registered[Any]]] = {kind.name: {} for kind in KINDS}
    # Loaded plugins have unique names; a failed record may share one (a second entry point named alike).
    by_name = {r.name: r for r in plugin_set.records if r.status == "loaded"}
    route_table: RouteTable | None = None

    def refuse(record: PluginRecord, exc: BaseException, what: str) -> list[str]:
        message = str(exc) if isinstance(exc, RegistrationError) else (
            f"{what} from {record.describe()} is refused: checking it raised {type(exc).__name__}: {exc}"
        )
        lines = message.splitlines()
        for line in lines:
            _refused(record, line)
        return lines

    for record, plugin in plugin_set.loaded():
        stage = _Stage()
        entries = restored.get(record.name) if restored is not None else None
        if entries is not None and entries.failed is not None:
            record.fail_with(*entries.failed, " (as recorded in the node catalogue; its files are unchanged)")
            plugin_set.manager.unregister(name=record.name)
            continue
        try:
            if entries is None:
                _call_hook(plugin, "register_invocations", stage.invocations.append, plugin_set.manager)
            for kind in KINDS:
                register = kind.register_into(stage.offered.setdefault(kind.name, []).append)
                _call_hook(plugin, kind.hook, register, plugin_set.manager)
        except BaseException as exc:  # noqa: BLE001 - one plugin's hook must not stop the host; Ctrl-C re-raised
            record.fail("registration hook", _plugin_error(exc))
            plugin_set.manager.unregister(name=record.name)
            continue

        if entries is not None:
            _restore(record, entries, node_sources, output_sources, owners, output_types)
        for cls in stage.invocations:
            try:
                type_id, output, output_type = _check_invocation(cls, record, invocations, outputs, by_name)
            except BaseException as exc:  # noqa: BLE001 - checking runs plugin code (defaults, annotations)
                lines = refuse(record, _plugin_error(exc), f"node class {cls!r}")
                node_refusals.setdefault(record.name, []).extend(lines)
                continue
            invocations[type_id] = Registered(type_id, cls, record.name)
            node_sources[type_id] = source_of(type_id, cls, record.name)
            owners[type_id] = record.name
            output_types[type_id] = output_type
            if output_type not in outputs:
                outputs[output_type] = Registered(output_type, output, record.name)
                output_sources[output_type] = source_of(output_type, output, record.name)
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
                    if kind.name == "static_assets":
                        route_table = route_table or RouteTable.for_core(core_routes)
                        routes = _check_static_paths(item, record, route_table, by_name)
                    if kind.name == "node_migrations":
                        _check_migration_owner(item, record, owners, by_name)
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

    if catalogue is not None and restored is None:
        catalogue.write(
            plugin_set.records,
            before,
            loaded_before,
            {k: (r.value, r.plugin, output_types[k]) for k, r in invocations.items()},
            {k: (r.value, r.plugin) for k, r in outputs.items()},
            node_refusals,
        )
    discard = catalogue.discard if catalogue is not None and restored is not None else None
    node_table = RegisteredClasses(node_sources, invocations, _restored_check("node"), discard)
    output_table = RegisteredClasses(output_sources, outputs, _restored_check("output"), discard)
    return freeze(plugin_set.records, node_table, output_table, output_types, contributions, catalogue)


def _restore(
    record: PluginRecord, entries: PluginEntries, node_sources: dict[str, ClassSource],
    output_sources: dict[str, ClassSource], owners: dict[str, str], output_types: dict[str, str],
) -> None:
    """Register one plugin's node and output types from the catalogue, as its hook registered them last time."""
    if entries.outputs:
        record.registered.setdefault("outputs", [])  # first, as collection lists a node's new output before it
    for source, output in entries.nodes:
        node_sources[source.key] = source
        owners[source.key] = record.name
        output_types[source.key] = output
        record.registered.setdefault("invocations", []).append(source.key)
    for source in entries.outputs:
        output_sources[source.key] = source
        record.registered.setdefault("outputs", []).append(source.key)
    for line in entries.refused:
        _refused(record, line)


def _refused(record: PluginRecord, line: str) -> None:
    """Record and log one refusal of something ``record`` offered."""
    record.refused.append(line)
    logger.warning("%s", line if record.describe() in line else f"{record.describe()}: {line}")
