"""Node versions in graphs: older nodes upgraded through their packs' migrations, newer ones refused.

A graph node may carry the reserved ``version`` key (absent: the installed version). Validation upgrades each node
before it parses it (:func:`upgrade_raw_node`, called from ``validation._parse_nodes``), so every path that reads a
graph (``POST /graphs/validate``, an enqueue, a queue item when it is claimed, ``invoke-host run``) migrates the same
way. Graphs the server saves carry the version of every node (:func:`stamp_versions`): a queue item enqueued
before its pack was upgraded is still known to hold the old version when a worker claims it.

The chain itself is the SDK's (:func:`invoke_sdk.node_migrations.upgrade_node`), which a pack's tests run too.
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from invoke_sdk.node_migrations import VERSION_KEY, NodeMigration, NodeVersionError, upgrade_node

from invoke_host.graph.errors import GraphError

if TYPE_CHECKING:
    from invoke_host.registry import FrozenRegistry

__all__ = ["VERSION_KEY", "NodeVersionError", "node_migrations", "stamp_versions", "upgrade_graph", "upgrade_raw_node"]

_tables: dict[int, Mapping[str, tuple[NodeMigration, ...]]] = {}
_lock = threading.Lock()


def node_migrations(registry: FrozenRegistry) -> Mapping[str, tuple[NodeMigration, ...]]:
    """The registry's migrations by node type (built once per registry)."""
    key = id(registry)
    with _lock:
        table = _tables.get(key)
        if table is None:
            by_type: dict[str, list[NodeMigration]] = defaultdict(list)
            for registered in registry.kind("node_migrations").values():
                by_type[registered.value.node_type].append(registered.value)
            table = MappingProxyType({k: tuple(v) for k, v in by_type.items()})
            _tables[key] = table
            # Keyed by id(): FrozenRegistry is not hashable; drop the entry when the registry goes.
            weakref.finalize(registry, _tables.pop, key, None)
    return table


def _pack(registry: FrozenRegistry, node_type: str) -> str:
    """The distribution and version that installed a node type, for messages (``my-pack 2.0.0``)."""
    plugin = registry.invocations.source(node_type).plugin
    for record in registry.plugins:
        if record.name == plugin:
            return f"{record.distribution} {record.version}" if record.distribution else f"plugin {record.name!r}"
    return f"plugin {plugin!r}"


def upgrade_raw_node(registry: FrozenRegistry, node_id: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The node's dict at its type's installed version, without the ``version`` key; :class:`NodeVersionError`
    when it cannot be brought there. ``raw["type"]`` must be a registered type."""
    if VERSION_KEY not in raw:
        return dict(raw)
    node_type = raw["type"]
    current = registry.invocations.source(node_type).version or "1.0.0"
    return upgrade_node(
        raw, current, node_migrations(registry).get(node_type, ()), node_id=node_id, pack=_pack(registry, node_type)
    )


def upgrade_graph(registry: FrozenRegistry, graph: Mapping[str, Any]) -> tuple[dict[str, Any], list[GraphError]]:
    """``graph`` with every node of a registered type upgraded (``version`` keys removed), and the nodes that could
    not be. Nodes of unknown types, and anything malformed, are left for validation to report."""
    nodes = graph.get("nodes")
    if not isinstance(nodes, Mapping):
        return dict(graph), []
    errors: list[GraphError] = []
    # A copy in one C call, where only the nodes that name a version are replaced: most graphs have none, and
    # inserting every node into a new dict was most of this walk in the server (issue #11). The order is the same.
    upgraded: dict[str, Any] = dict(nodes)
    for node_id, raw in nodes.items():
        # type() first: a node from JSON is a dict, and the ABC's isinstance was a third of this walk (issue #11).
        is_node = type(raw) is dict or isinstance(raw, Mapping)
        if is_node and VERSION_KEY in raw and raw.get("type") in registry.invocations:
            try:
                upgraded[node_id] = upgrade_raw_node(registry, str(node_id), raw)
            except NodeVersionError as exc:
                errors.append(GraphError(str(node_id), VERSION_KEY, str(exc)))
    return {**graph, "nodes": upgraded}, errors


def stamp_versions(registry: FrozenRegistry, graph: Mapping[str, Any], *, keep_given: bool = False) -> dict[str, Any]:
    """``graph`` (already upgraded) with each node of a registered type carrying its installed version; with
    ``keep_given``, a node that names its version keeps it (a saved workflow is migrated when it runs)."""
    nodes = graph.get("nodes")
    if not isinstance(nodes, Mapping):
        return dict(graph)
    stamped: dict[str, Any] = {}
    versions: dict[Any, str | None] = {}  # by node type: a 1,000-node graph has a few types
    for node_id, raw in nodes.items():
        if type(raw) is not dict and not isinstance(raw, Mapping):  # type() first, as in upgrade_graph
            stamped[node_id] = raw
            continue
        node_type = raw.get("type")
        try:
            version = versions[node_type]
        except KeyError:
            registered = registry.invocations.get(node_type) if isinstance(node_type, str) else None
            info = registered.value.invocation_info() if registered is not None else None
            version = versions[node_type] = info.version if info is not None else None
        except TypeError:  # an unhashable "type": no registered node, left for validation to report
            version = None
        keep = keep_given and VERSION_KEY in raw
        stamped[node_id] = {**raw, VERSION_KEY: version} if version is not None and not keep else raw
    return {**graph, "nodes": stamped}
