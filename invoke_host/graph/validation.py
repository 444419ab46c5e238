"""Graph validation against the frozen registry: every problem is reported, each with its node id and field.

Nodes are validated one by one (not as one pydantic model) so that a bad node does not hide the
problems of the others, and so each error can name the node it belongs to. Then the structure is
checked: edges, field types (collections included), how inputs are filled, cycles, Iterate/Collect.

Given the host's :class:`~invoke_host.limits.Limits`, a graph with too many nodes or edges is refused
before any node is parsed, each node's validators get the limits as their validation context (so a
``range_of_size`` of 20,000,000 items is refused here, not when it runs), and every value written in
the graph is measured: no collection longer than ``max_collection_size``, no string longer than
``max_string_length``.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from invoke_sdk import BaseInvocation, BaseInvocationOutput
from invoke_sdk.fields import field_extra
from invoke_sdk.limits import LimitExceededError
from pydantic import ValidationError

from invoke_host.graph.coercion import numbers_as_text
from invoke_host.graph.edges import Edge
from invoke_host.graph.errors import GraphError, GraphValidationError
from invoke_host.graph.migration import VERSION_KEY, NodeVersionError, upgrade_raw_node
from invoke_host.graph.model import COLLECT_TYPE, ITERATE_TYPE, GraphBase, graph_model
from invoke_host.graph.types import compatible, describe_type, is_any, is_list, list_item, strip_optional
from invoke_host.registry.errors import RegistrationError

if TYPE_CHECKING:
    from invoke_host.limits import Limits
    from invoke_host.registry import FrozenRegistry

__all__ = ["ValidatedGraph", "load_validated_graph", "parse_graph", "validate_graph"]

_TOP_LEVEL = {"id", "nodes", "edges"}


@dataclass
class ValidatedGraph:
    """The outcome of validation: the graph (None when invalid) and every problem found."""

    graph: GraphBase | None
    errors: list[GraphError] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


def _loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _decode(data: Any, errors: list[GraphError]) -> Any:
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(GraphError(None, None, f"The graph is not UTF-8 text: {exc}"))
            return None
    if isinstance(data, str):
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            errors.append(GraphError(None, None, f"The graph is not valid JSON: {exc}"))
            return None
    return data


def _size_errors(nodes: Any, edges: Any, limits: Limits | None) -> list[GraphError]:
    """Too many nodes or edges: checked on the raw graph, so an oversized one costs nothing more to refuse."""
    if limits is None:
        return []
    found = []
    for key, value, setting in (("nodes", nodes, "max_graph_nodes"), ("edges", edges, "max_graph_edges")):
        if isinstance(value, (Mapping, list)):
            try:
                limits.check(setting, len(value), f"the number of {key} in the graph")
            except LimitExceededError as exc:
                found.append(GraphError(None, key, str(exc)))
    return found


def _value_errors(node_id: str, node: BaseInvocation, limits: Limits) -> list[GraphError]:
    """The inputs written in the graph, measured against the collection and string limits."""
    found = []
    for name in node.model_fields_set:
        try:
            limits.measure(getattr(node, name), f"input {name!r} of node {node_id!r}")
        except LimitExceededError as exc:
            found.append(GraphError(node_id, name, str(exc)))
    return found


def _validate_node(cls: type[BaseInvocation], values: dict[str, Any], context: Any) -> BaseInvocation:
    try:
        return cls.model_validate(values, context=context)
    except ValidationError as exc:
        converted = numbers_as_text(cls, values, exc)
        if converted is None:
            raise
    return cls.model_validate(converted, context=context)


def _parse_nodes(
    registry: FrozenRegistry, raw_nodes: Any, errors: list[GraphError], limits: Limits | None = None
) -> tuple[dict[str, BaseInvocation], set[str]]:
    """Valid nodes by id, and the ids of every node present (valid or not)."""
    nodes: dict[str, BaseInvocation] = {}
    if not isinstance(raw_nodes, Mapping):
        errors.append(GraphError(None, "nodes", "'nodes' must be an object mapping node ids to nodes"))
        return nodes, set()
    present = {str(k) for k in raw_nodes}
    known = registry.invocations
    context = limits.context if limits is not None else None
    for node_id, raw in raw_nodes.items():
        node_id = str(node_id)
        if not isinstance(raw, Mapping):
            errors.append(GraphError(node_id, None, "a node must be an object with a 'type' and its input values"))
            continue
        type_id = raw.get("type")
        if not isinstance(type_id, str):
            errors.append(GraphError(node_id, "type", "the node has no 'type' (a string naming a node type)"))
            continue
        try:
            reg = known.get(type_id)
        except RegistrationError as exc:
            # A class the node catalogue named that no longer imports as recorded (a dependency uninstalled, say).
            errors.append(GraphError(node_id, "type", str(exc)))
            continue
        if reg is None:
            import difflib  # here, not at import: 1 ms of every start, for the hint of a graph that names no type

            close = difflib.get_close_matches(type_id, list(known), n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            errors.append(GraphError(
                node_id, "type",
                f"unknown node type {type_id!r}.{hint} If a plugin should provide it, check `invoke-host plugins` "
                "for one that failed to load.",
            ))
            continue
        try:
            values = upgrade_raw_node(registry, node_id, raw)  # older versions migrated, newer refused
        except NodeVersionError as exc:
            errors.append(GraphError(node_id, VERSION_KEY, str(exc)))
            continue
        given_id = values.setdefault("id", node_id)
        if given_id != node_id:
            errors.append(GraphError(node_id, "id", f"the node's id {given_id!r} differs from its key {node_id!r}"))
            continue
        try:
            node = _validate_node(reg.value, values, context)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                errors.append(GraphError(node_id, _loc(err["loc"]) or None, err["msg"]))
            continue
        except Exception as exc:  # noqa: BLE001 - a node's own validator may raise anything; report it on the node
            errors.append(GraphError(node_id, None, f"the node's validation failed: {type(exc).__name__}: {exc}"))
            continue
        if "id" not in raw:
            # The id comes from the key; keep it out of the "given" fields so the graph dumps as it came in.
            node.__pydantic_fields_set__.discard("id")
        if limits is not None and (too_big := _value_errors(node_id, node, limits)):
            errors.extend(too_big)
            continue
        nodes[node_id] = node
    return nodes, present


def _parse_edges(raw_edges: Any, errors: list[GraphError]) -> list[Edge]:
    if not isinstance(raw_edges, list):
        errors.append(GraphError(None, "edges", "'edges' must be a list of edges"))
        return []
    edges = []
    for i, raw in enumerate(raw_edges):
        try:
            edges.append(Edge.model_validate(raw))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                where = _loc(("edges", i, *err["loc"]))
                errors.append(GraphError(None, where, f"invalid edge: {err['msg']}"))
    return edges


class _Structure:
    """The structural checks, over nodes that validated on their own."""

    def __init__(self, registry: FrozenRegistry, nodes: dict[str, BaseInvocation], present: set[str]) -> None:
        self.registry = registry
        self.nodes = nodes
        self.present = present
        self.errors: list[GraphError] = []
        self.inputs: dict[str, dict[str, list[Edge]]] = defaultdict(lambda: defaultdict(list))
        self.outputs: dict[str, list[Edge]] = defaultdict(list)
        self._out_types: dict[tuple[str, str], Any] = {}
        self._collect_roots: dict[str, Any] = {}
        self._visiting: set[tuple[str, str]] = set()

    def error(self, node_id: str | None, field_name: str | None, message: str) -> None:
        self.errors.append(GraphError(node_id, field_name, message))

    def output_class(self, node_id: str) -> type[BaseInvocationOutput]:
        return self.registry.output_of(self.nodes[node_id].type)  # type: ignore[attr-defined,no-any-return]

    # -- edges -------------------------------------------------------------------------------------
    def check_edges(self, edges: list[Edge]) -> list[Edge]:
        good: list[Edge] = []
        for edge in edges:
            src, dst = edge.source, edge.destination
            ok = True
            for end, role in ((src, "source"), (dst, "destination")):
                if end.node_id not in self.present:
                    self.error(end.node_id, end.field, f"edge {edge.describe()}: the {role} node does not exist")
                    ok = False
                elif end.node_id not in self.nodes:
                    ok = False  # the node itself was reported invalid
            if not ok:
                continue
            out_fields = self.output_class(src.node_id).model_fields
            if src.field not in out_fields or src.field == "type":
                names = ", ".join(n for n in out_fields if n != "type")
                self.error(src.node_id, src.field, f"edge {edge.describe()}: node {src.node_id!r} has no output "
                           f"{src.field!r} (its outputs: {names})")
                ok = False
            dst_cls = type(self.nodes[dst.node_id])
            info = dst_cls.model_fields.get(dst.field)
            if info is None or field_extra(info).get("field_kind") != "input":
                names = ", ".join(dst_cls.input_field_names())
                self.error(dst.node_id, dst.field, f"edge {edge.describe()}: node {dst.node_id!r} has no input "
                           f"{dst.field!r} (its inputs: {names})")
                ok = False
            elif field_extra(info).get("input") == "direct":
                self.error(dst.node_id, dst.field, f"edge {edge.describe()}: input {dst.field!r} takes only a value "
                           "written in the graph, not an edge")
                ok = False
            if src.node_id == dst.node_id and ok:
                self.error(dst.node_id, dst.field, f"edge {edge.describe()} connects the node to itself (a cycle)")
                ok = False
            if ok:
                good.append(edge)
                self.inputs[dst.node_id][dst.field].append(edge)
                self.outputs[src.node_id].append(edge)
        for node_id, by_field in self.inputs.items():
            for field_name, into in by_field.items():
                if len(into) > 1 and not (self.nodes[node_id].type == COLLECT_TYPE and field_name == "item"):  # type: ignore[attr-defined]
                    froms = ", ".join(f"{e.source.node_id}.{e.source.field}" for e in into)
                    self.error(node_id, field_name, f"input {field_name!r} has {len(into)} incoming edges ({froms}); "
                               "only a collect node's 'item' takes more than one")
        return good

    # -- inputs ------------------------------------------------------------------------------------
    def check_inputs(self) -> None:
        for node_id, node in self.nodes.items():
            cls = type(node)
            connected = self.inputs.get(node_id, {})
            for name in cls.input_field_names():
                info = cls.model_fields[name]
                extra = field_extra(info)
                value = getattr(node, name)
                default = info.get_default(call_default_factory=True)
                written = name in node.model_fields_set and value is not None and value != default
                # An edge wins over a value written for the same input, as in InvokeAI (its graphs may carry both).
                if extra.get("input") == "connection" and written and name not in connected:
                    self.error(node_id, name, f"input {name!r} takes only an edge, but the graph gives it a value")
                if extra.get("orig_required") and value is None and name not in connected:
                    self.error(node_id, name, f"required input {name!r} has no value and no incoming edge")

    # -- cycles ------------------------------------------------------------------------------------
    def check_cycles(self, edges: list[Edge]) -> bool:
        indeg = dict.fromkeys(self.nodes, 0)
        children: dict[str, set[str]] = defaultdict(set)
        for e in edges:
            if e.destination.node_id not in children[e.source.node_id]:
                children[e.source.node_id].add(e.destination.node_id)
                indeg[e.destination.node_id] += 1
        ready = deque(n for n, d in indeg.items() if d == 0)
        seen = 0
        while ready:
            n = ready.popleft()
            seen += 1
            for c in children[n]:
                indeg[c] -= 1
                if indeg[c] == 0:
                    ready.append(c)
        if seen == len(self.nodes):
            return True
        stuck = [n for n, d in indeg.items() if d > 0]
        for n in stuck:
            self.error(n, None, f"node {n!r} is part of a cycle (nodes that depend on each other: "
                       f"{', '.join(sorted(stuck))})")
        return False

    # -- types -------------------------------------------------------------------------------------
    def out_type(self, node_id: str, field_name: str) -> Any:
        key = (node_id, field_name)
        if key in self._out_types:
            return self._out_types[key]
        if key in self._visiting:
            return Any
        self._visiting.add(key)
        try:
            node_type = self.nodes[node_id].type  # type: ignore[attr-defined]
            if node_type == ITERATE_TYPE and field_name == "item":
                into = self.inputs.get(node_id, {}).get("collection", [])
                src_t = self.out_type(into[0].source.node_id, into[0].source.field) if into else Any
                result = list_item(src_t) if is_list(src_t) else Any
            elif node_type == COLLECT_TYPE and field_name == "collection":
                root = self.collect_root(node_id)
                result = list[root] if root is not None else list[Any]  # type: ignore[valid-type]
            else:
                result = self.output_class(node_id).model_fields[field_name].annotation
        finally:
            self._visiting.discard(key)
        self._out_types[key] = result
        return result

    def collect_item_types(self, node_id: str) -> list[Any]:
        found: list[Any] = []
        into = self.inputs.get(node_id, {})
        for e in into.get("item", []):
            found.append(strip_optional(self.out_type(e.source.node_id, e.source.field)))
        for e in into.get("collection", []):
            t = self.out_type(e.source.node_id, e.source.field)
            found.append(strip_optional(list_item(t)) if is_list(t) else Any)
        return found

    def collect_root(self, node_id: str) -> Any:
        """The one type all of a collect's items share (None when only ``Any`` items come in)."""
        if node_id in self._collect_roots:
            return self._collect_roots[node_id]
        kinds: list[Any] = []
        for t in self.collect_item_types(node_id):
            if not is_any(t) and t not in kinds:
                kinds.append(t)
        roots = [t for t in kinds if not any(u is not t and _subclass(t, u) for u in kinds)]
        root = roots[0] if len(roots) == 1 else (None if not roots else Any)
        self._collect_roots[node_id] = root
        return root

    def check_types(self, edges: list[Edge]) -> None:
        for edge in edges:
            src, dst = edge.source, edge.destination
            src_t = self.out_type(src.node_id, src.field)
            dst_t = type(self.nodes[dst.node_id]).model_fields[dst.field].annotation
            if not compatible(src_t, dst_t):
                hint = ""
                if is_list(src_t) and not is_list(dst_t):
                    hint = " (a collection cannot feed a single-value input; put an iterate node between them)"
                elif is_list(dst_t) and not is_list(src_t):
                    hint = " (a single value cannot feed a collection input; gather values with a collect node)"
                self.error(dst.node_id, dst.field, f"edge {edge.describe()}: output type {describe_type(src_t)} "
                           f"does not fit input type {describe_type(dst_t)}{hint}")

    def check_special(self) -> None:
        for node_id, node in self.nodes.items():
            node_type = node.type  # type: ignore[attr-defined]
            into = self.inputs.get(node_id, {})
            if node_type == ITERATE_TYPE:
                coll = into.get("collection", [])
                if not coll:
                    self.error(node_id, "collection", "an iterate node needs an incoming edge from a collection")
                elif (t := self.out_type(coll[0].source.node_id, coll[0].source.field)) is not None and not (
                    is_list(t) or is_any(t)
                ):
                    self.error(node_id, "collection", f"an iterate node's input must be a collection, "
                               f"not {describe_type(t)}")
            elif node_type == COLLECT_TYPE:
                if not into.get("item") and not into.get("collection"):
                    self.error(node_id, "item", "a collect node needs at least one incoming item or collection edge")
                    continue
                kinds = []
                for t in self.collect_item_types(node_id):
                    if not is_any(t) and t not in kinds:
                        kinds.append(t)
                roots = [t for t in kinds if not any(u is not t and _subclass(t, u) for u in kinds)]
                if len(roots) > 1:
                    self.error(node_id, "item", "a collect node's items must all be of one type, got "
                               + ", ".join(describe_type(t) for t in roots))


def _subclass(t: Any, u: Any) -> bool:
    try:
        return isinstance(t, type) and isinstance(u, type) and issubclass(t, u)
    except TypeError:
        return False


def _check(
    registry: FrozenRegistry, nodes: dict[str, BaseInvocation], present: set[str], edges: list[Edge],
    limits: Limits | None = None,
) -> list[GraphError]:
    structure = _Structure(registry, nodes, present)
    good = structure.check_edges(edges)
    structure.check_inputs()
    if structure.check_cycles(good):
        structure.check_types(good)
        structure.check_special()
    if limits is not None:
        for node_id, by_field in structure.inputs.items():
            items = by_field.get("item", []) if nodes[node_id].type == COLLECT_TYPE else []  # type: ignore[attr-defined]
            try:
                limits.check("max_collection_size", len(items), f"the number of items collect node {node_id!r} "
                             "gathers from its edges")
            except LimitExceededError as exc:
                structure.error(node_id, "item", str(exc))
    return structure.errors


def validate_graph(registry: FrozenRegistry, data: Any, *, limits: Limits | None = None) -> ValidatedGraph:
    """Validate a graph given as JSON bytes/text, a dict, or a graph model; never raises for bad input.

    ``limits`` are the host's (``Limits.from_config``); without them no size is checked.
    """
    errors: list[GraphError] = []
    model = graph_model(registry)
    if isinstance(data, GraphBase):
        if too_big := _size_errors(data.nodes, data.edges, limits):
            return ValidatedGraph(None, too_big)
        nodes = dict(data.nodes)
        errors.extend(
            GraphError(k, "id", f"the node's id {n.id!r} differs from its key {k!r}") for k, n in nodes.items()
            if n.id != k
        )
        if limits is not None:
            errors.extend(e for k, n in nodes.items() for e in _value_errors(k, n, limits))
        errors.extend(_check(registry, nodes, set(nodes), list(data.edges), limits))
        return ValidatedGraph(None if errors else data, errors)
    raw = _decode(data, errors)
    if errors:
        return ValidatedGraph(None, errors)
    if not isinstance(raw, Mapping):
        return ValidatedGraph(None, [GraphError(None, None, "a graph must be a JSON object with 'nodes' and 'edges'")])
    for key in raw:
        if key not in _TOP_LEVEL:
            errors.append(GraphError(None, str(key), f"unknown graph field {key!r} (a graph has id, nodes, edges)"))
    if too_big := _size_errors(raw.get("nodes"), raw.get("edges"), limits):
        return ValidatedGraph(None, too_big)
    graph_id = raw.get("id")
    if graph_id is not None and not isinstance(graph_id, str):
        errors.append(GraphError(None, "id", "the graph's id must be a string"))
    nodes, present = _parse_nodes(registry, raw.get("nodes", {}), errors, limits)
    edges = _parse_edges(raw.get("edges", []), errors)
    errors.extend(_check(registry, nodes, present, edges, limits))
    if errors:
        return ValidatedGraph(None, errors)
    fields: dict[str, Any] = {"nodes": nodes, "edges": edges}
    if "id" in raw:
        fields["id"] = graph_id
    return ValidatedGraph(model.model_construct(**fields), [])


def parse_graph(registry: FrozenRegistry, data: Any, *, limits: Limits | None = None) -> GraphBase:
    """A validated graph, or :class:`GraphValidationError` listing every problem."""
    result = validate_graph(registry, data, limits=limits)
    if result.graph is None:
        raise GraphValidationError(result.errors)
    return result.graph


def load_validated_graph(registry: FrozenRegistry, data: Any) -> GraphBase:
    """A graph that already passed :func:`validate_graph` against a registry with this one's fingerprint
    (:func:`~invoke_host.graph.fingerprint.registry_fingerprint`), such as a queue item's, checked at enqueue.

    Its nodes and edges are built again (the engine needs the objects), but the structure (edges, types,
    inputs, cycles, iterate and collect) is not checked a second time: for a large graph that is most of
    the cost. A node that no longer validates still raises :class:`GraphValidationError`.
    """
    errors: list[GraphError] = []
    raw = _decode(data, errors)
    if not errors and not isinstance(raw, Mapping):
        errors.append(GraphError(None, None, "a graph must be a JSON object with 'nodes' and 'edges'"))
    if errors:
        raise GraphValidationError(errors)
    nodes, _present = _parse_nodes(registry, raw.get("nodes", {}), errors)
    edges = _parse_edges(raw.get("edges", []), errors)
    if errors:
        raise GraphValidationError(errors)
    fields: dict[str, Any] = {"nodes": nodes, "edges": edges}
    if "id" in raw:
        fields["id"] = raw["id"]
    return graph_model(registry).model_construct(**fields)
