"""``GraphExecutionState``: one session of one graph — iterate expansion, eager preparation, deepest-first order.

Terms: a *source* node is a node of the graph as submitted; a *prepared* (execution) node is one
instance of it (one per combination of iterations it sits under). Every step is driven by indexes
(children by node, pending-parent counts, a heap of ready nodes), so a run costs time in proportion
to the nodes and edges it touches, never a re-scan of the whole graph per step.

Rules, as in InvokeAI (docs/engine.md, "Loops and collects", says where and why ours differ):
- a source node is prepared as soon as all its parents are prepared; an ``iterate`` node also waits
  until its parents have all run, since it needs the collection to know how many branches to make;
- every iterate opens a loop; a node sits in its parents' loops (and its own, for an iterate) and gets one
  instance per combination of their items that its parents agree on (independent loops make a product);
- a ``collect`` closes one loop: the innermost loop of each source of an ``item`` edge (a ``collection``
  edge closes none). It gets one instance per combination of items of the loops it keeps open, fed by the
  instances of its sources that agree with it on the loops they share; where a loop has no item the
  group stays at the level around it, so an empty loop still gets its one, empty, collect;
- the next node to run is the deepest ready one (ties: lowest iteration path first), so each branch
  runs to its leaf before the next branch starts;
- an iteration path lists the indexes of the loops a node sits in, ordered by each iterate's depth and
  then its node id (an inner iterate is always deeper than its outer one): facts of the graph, never of
  the order its nodes and edges were written in;
- ``collect`` gathers items ordered by iteration path (ties: source node id, then output field).

Limits (``invoke_host.limits``): an iterate that would expand more than ``max_collection_size`` items, a
collect that would gather more, and any preparation that would take the session past ``max_session_nodes``
instances are refused before a single instance is created, with a :class:`NodeLimitError` on that node.
"""

from __future__ import annotations

import heapq
import itertools
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from invoke_sdk import BaseInvocation, BaseInvocationOutput
from invoke_sdk.limits import LimitExceededError
from pydantic import ValidationError

from invoke_host.engine.errors import NodeErrorRecord, NodeInputError, NodeLimitError
from invoke_host.graph import COLLECT_TYPE, ITERATE_TYPE, GraphBase, parse_graph
from invoke_host.graph.types import strip_optional
from invoke_host.limits import Limits
from invoke_host.registry import FrozenRegistry

__all__ = ["ExecNode", "GraphExecutionState"]


@dataclass
class ExecNode:
    """One prepared instance of a source node."""

    id: str
    source_id: str
    iter_map: dict[str, str]
    """Iterate source id -> the iterate instance this node belongs to (itself, for an iterate instance). A loop
    of the source node can be missing: a collect's group for a loop that had no items, and what follows it."""
    path: tuple[int, ...]
    """Indexes of those iterate instances, outermost first: the order collect keeps."""
    inputs: list[tuple[str, str, str]]
    """(source instance id, output field, input field) per incoming edge."""
    index: int | None = None
    """For an iterate instance: which item of the collection it yields."""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source_id": self.source_id, "iter_map": self.iter_map, "path": list(self.path),
                "inputs": [list(i) for i in self.inputs], "index": self.index}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExecNode:
        return cls(id=data["id"], source_id=data["source_id"], iter_map=dict(data["iter_map"]),
                   path=tuple(data["path"]), inputs=[tuple(i) for i in data["inputs"]],  # type: ignore[misc]
                   index=data.get("index"))


@dataclass
class _Plan:
    """Indexes of the source graph, built once per session."""

    order: dict[str, int]
    depth: dict[str, int]
    parents: dict[str, list[str]]
    children: dict[str, list[str]]
    in_edges: dict[str, list[tuple[str, str, str]]]
    iter_keys: dict[str, tuple[str, ...]]
    kind: dict[str, str]
    str_inputs: dict[str, frozenset[str]] = field(default_factory=dict)
    iter_rank: dict[str, int] = field(default_factory=dict)
    """Iterate source id -> its place in every iteration path."""

    @classmethod
    def build(cls, graph: GraphBase) -> _Plan:
        nodes = graph.nodes
        parents: dict[str, list[str]] = {n: [] for n in nodes}
        children: dict[str, list[str]] = {n: [] for n in nodes}
        in_edges: dict[str, list[tuple[str, str, str]]] = {n: [] for n in nodes}
        for e in graph.edges:
            s, d = e.source.node_id, e.destination.node_id
            in_edges[d].append((s, e.source.field, e.destination.field))
            if s not in parents[d]:
                parents[d].append(s)
                children[s].append(d)
        kind = {n: node.type for n, node in nodes.items()}
        # Kahn's order (graphs reaching here are validated, so acyclic), with depths as longest paths.
        indeg = {n: len(parents[n]) for n in nodes}
        ready = [n for n in nodes if indeg[n] == 0]
        order: dict[str, int] = {}
        depth = dict.fromkeys(nodes, 0)
        while ready:
            n = ready.pop()
            order[n] = len(order)
            for c in children[n]:
                depth[c] = max(depth[c], depth[n] + 1)
                indeg[c] -= 1
                if indeg[c] == 0:
                    ready.append(c)
        iterates = sorted((n for n in nodes if kind[n] == ITERATE_TYPE), key=lambda n: (depth[n], n))
        iter_rank = {n: i for i, n in enumerate(iterates)}
        iter_keys: dict[str, tuple[str, ...]] = {}
        for n in sorted(order, key=order.__getitem__):
            keys: set[str] = set()
            if kind[n] == COLLECT_TYPE:
                # A collect closes the innermost loop of each item it gathers and keeps every loop around it
                # (a collection edge closes none): it gets one instance per item of those enclosing loops.
                for p, _, d in in_edges[n]:
                    keys.update(iter_keys[p][:-1] if d == "item" else iter_keys[p])
            else:
                for p in parents[n]:
                    keys.update(iter_keys[p])
            if kind[n] == ITERATE_TYPE:
                keys.add(n)
            iter_keys[n] = tuple(sorted(keys, key=iter_rank.__getitem__))
        str_inputs = {}
        for n, node in nodes.items():
            str_inputs[n] = frozenset(
                name for name, info in type(node).model_fields.items() if strip_optional(info.annotation) is str
            )
        return cls(order, depth, parents, children, in_edges, iter_keys, kind, str_inputs, iter_rank)


class GraphExecutionState:
    """The state of one graph's execution: what is prepared, ready, done, and every result and error."""

    def __init__(
        self, registry: FrozenRegistry, graph: GraphBase, *, id: str | None = None,  # noqa: A002
        limits: Limits | None = None,
    ) -> None:
        self.id = id or uuid.uuid4().hex
        self.registry = registry
        self.graph = graph
        self.limits = limits or Limits.from_settings()
        """The host limits preparation and node inputs are held to (a runner sets its host's before it runs)."""
        self._plan = _Plan.build(graph)
        self.exec_nodes: dict[str, ExecNode] = {}
        self.source_prepared_mapping: dict[str, list[str]] = {}
        self.executed: set[str] = set()
        self.executed_history: list[str] = []
        self.results: dict[str, BaseInvocationOutput] = {}
        self.errors: dict[str, NodeErrorRecord] = {}
        self._reset_indexes()
        self._prepare_ready_sources()

    # -- indexes -----------------------------------------------------------------------------------
    def _reset_indexes(self) -> None:
        plan = self._plan
        self._pending: dict[str, int] = {}
        self._children: dict[str, list[str]] = defaultdict(list)
        self._ready: list[tuple[int, tuple[int, ...], int, str]] = []
        self._seq = itertools.count()
        self._remaining: dict[str, int] = {}
        self._unprepared_parents = {n: len(ps) for n, ps in plan.parents.items()}
        self._incomplete_parents = {n: len(ps) for n, ps in plan.parents.items()}
        self._work: list[str] = [n for n, c in self._unprepared_parents.items() if c == 0]

    @property
    def prepared_source_mapping(self) -> dict[str, str]:
        """Prepared node id -> source node id."""
        return {e.id: e.source_id for e in self.exec_nodes.values()}

    def _push_ready(self, node: ExecNode) -> None:
        entry = (-self._plan.depth[node.source_id], node.path, next(self._seq), node.id)
        heapq.heappush(self._ready, entry)

    # -- preparation -------------------------------------------------------------------------------
    def _prepare_ready_sources(self) -> None:
        work = self._work
        while work:
            source_id = work.pop()
            if source_id in self.source_prepared_mapping:
                continue
            if self._unprepared_parents[source_id] > 0:
                continue
            if self._plan.kind[source_id] == ITERATE_TYPE and self._incomplete_parents[source_id] > 0:
                continue
            self._prepare_source(source_id)

    def _combinations(self, source_id: str) -> list[tuple[dict[str, str], dict[str, str]]]:
        """(iteration map, parent instance chosen per parent source) for each instance to create."""
        plan = self._plan
        combos: list[tuple[dict[str, str], dict[str, str]]] = [({}, {})]
        have: tuple[str, ...] = ()
        for parent in sorted(plan.parents[source_id], key=plan.order.__getitem__):
            parent_keys = plan.iter_keys[parent]
            shared = tuple(k for k in parent_keys if k in have)
            # A loop missing from a map (a collect's instance for a loop that had no items) matches only its like.
            by_projection: dict[tuple[str | None, ...], list[ExecNode]] = defaultdict(list)
            for inst_id in self.source_prepared_mapping[parent]:
                inst = self.exec_nodes[inst_id]
                by_projection[tuple(inst.iter_map.get(k) for k in shared)].append(inst)
            joined = []
            room = self.limits.max_session_nodes - len(self.exec_nodes)
            for iter_map, chosen in combos:
                for inst in by_projection.get(tuple(iter_map.get(k) for k in shared), ()):
                    joined.append(({**iter_map, **inst.iter_map}, {**chosen, parent: inst.id}))
                if len(joined) > room:
                    # Iterations above this node multiply; stop before the product is built.
                    self._refuse(source_id, "max_session_nodes", len(self.exec_nodes) + len(joined),
                                 f"the number of node instances the session would prepare for node {source_id!r}")
            combos = joined
            have = tuple(set(have) | set(parent_keys))
        return combos

    def _collect_groups(self, source_id: str) -> list[tuple[dict[str, str], list[tuple[str, str, str]]]]:
        """(iteration map, inputs) for each instance of a collect: one per item of the loops it keeps open.

        The groups are the items of those loops, outer first; where a loop has no item under a group, the group
        stays at the enclosing level (so an empty loop still gets its one, empty, collect). Each instance of a
        source feeding the collect belongs to every group it agrees with on the loops they share. Counted
        against ``max_session_nodes`` and ``max_collection_size`` before any instance is made.
        """
        plan = self._plan
        exec_nodes = self.exec_nodes
        keys = plan.iter_keys[source_id]
        room = self.limits.max_session_nodes - len(exec_nodes)
        groups: list[dict[str, str]] = [{}]
        for k in keys:
            around = plan.iter_keys[k][:-1]  # the loops around loop k (all earlier in ``keys``)
            by_around: dict[tuple[str | None, ...], list[str]] = defaultdict(list)
            for inst_id in self.source_prepared_mapping[k]:
                inst_map = exec_nodes[inst_id].iter_map
                by_around[tuple(inst_map.get(a) for a in around)].append(inst_id)
            extended: list[dict[str, str]] = []
            for group in groups:
                found = by_around.get(tuple(group.get(a) for a in around))
                if found:
                    extended.extend({**group, k: inst_id} for inst_id in found)
                else:
                    extended.append(group)
                if len(extended) > room:
                    self._refuse(source_id, "max_session_nodes", len(exec_nodes) + len(extended),
                                 f"the number of node instances the session would prepare for node {source_id!r}")
            groups = extended
        if len(groups) > room:
            self._refuse(source_id, "max_session_nodes", len(exec_nodes) + len(groups),
                         f"the number of node instances the session would prepare for node {source_id!r}")
        # Per group, the instances of each source that belong to it: lists shared between groups, so an item
        # that belongs to many groups (one outside their loops) is counted before any group's inputs are built.
        open_loops = set(keys)
        members: list[list[list[tuple[str, str, str]]]] = [[] for _ in groups]
        total = 0
        for parent, out_field, in_field in plan.in_edges[source_id]:
            shared = tuple(k for k in plan.iter_keys[parent] if k in open_loops)
            by_shared: dict[tuple[str | None, ...], list[tuple[str, str, str]]] = defaultdict(list)
            for inst_id in self.source_prepared_mapping[parent]:
                inst_map = exec_nodes[inst_id].iter_map
                by_shared[tuple(inst_map.get(k) for k in shared)].append((inst_id, out_field, in_field))
            for group, found in zip(groups, members, strict=True):
                bucket = by_shared.get(tuple(group.get(k) for k in shared))
                if bucket:
                    found.append(bucket)
                    total += len(bucket)
        for found in members:
            items = sum(len(bucket) for bucket in found if bucket[0][2] == "item")
            if items > self.limits.max_collection_size:
                self._refuse(source_id, "max_collection_size", items,
                             f"the number of items collect node {source_id!r} would gather")
        if total > self.limits.max_session_nodes:
            # Each item of a loop the groups do not share goes into every group: a product, bounded like one.
            self._refuse(source_id, "max_session_nodes", total,
                         f"the number of items the {len(groups)} instances of collect node {source_id!r} would "
                         "gather together")
        return [(group, [i for bucket in found for i in bucket]) for group, found in zip(groups, members, strict=True)]

    def _path(self, iter_map: dict[str, str]) -> tuple[int, ...]:
        rank = self._plan.iter_rank
        return tuple(self.exec_nodes[iter_map[k]].index or 0 for k in sorted(iter_map, key=rank.__getitem__))

    def _add_exec(self, node: ExecNode) -> None:
        self.exec_nodes[node.id] = node
        self.source_prepared_mapping[node.source_id].append(node.id)
        pending = 0
        for parent_id, _, _ in node.inputs:
            self._children[parent_id].append(node.id)
            if parent_id not in self.executed:
                pending += 1
        self._pending[node.id] = pending
        if pending == 0 and node.id not in self.executed:
            self._push_ready(node)

    def _refuse(self, source_id: str, setting: str, amount: int, what: str) -> None:
        limit: int = getattr(self.limits, setting)
        raise NodeLimitError(f"{source_id}#0", source_id, LimitExceededError(what, amount, setting, limit))

    def _check_expansion(
        self, source_id: str, kind: str, edges: list[tuple[str, str, str]],
        combos: list[tuple[dict[str, str], dict[str, str]]],
    ) -> None:
        """Refuse, before creating any, instances that would pass ``max_collection_size`` or ``max_session_nodes``."""
        limits = self.limits
        if kind == ITERATE_TYPE:
            new = 0
            for _, chosen in combos:
                coll_parent, coll_field = next((chosen[p], f) for (p, f, d) in edges if d == "collection")
                size = len(getattr(self.results[coll_parent], coll_field))
                if size > limits.max_collection_size:
                    self._refuse(source_id, "max_collection_size", size,
                                 f"the number of items iterate node {source_id!r} would expand")
                new += size
        else:
            new = len(combos)
        if len(self.exec_nodes) + new > limits.max_session_nodes:
            self._refuse(source_id, "max_session_nodes", len(self.exec_nodes) + new,
                         f"the number of node instances the session would prepare for node {source_id!r}")

    def _prepare_source(self, source_id: str) -> None:
        plan = self._plan
        kind = plan.kind[source_id]
        edges = plan.in_edges[source_id]
        count = 0
        if kind == COLLECT_TYPE:
            groups = self._collect_groups(source_id)
            self.source_prepared_mapping[source_id] = []
            for iter_map, inputs in groups:
                self._add_exec(ExecNode(f"{source_id}#{count}", source_id, iter_map, self._path(iter_map), inputs))
                count += 1
        else:
            combos = self._combinations(source_id)
            self._check_expansion(source_id, kind, edges, combos)
            self.source_prepared_mapping[source_id] = []
            for iter_map, chosen in combos:
                inputs = [(chosen[p], f, d) for (p, f, d) in edges]
                if kind == ITERATE_TYPE:
                    coll_parent, coll_field = next((chosen[p], f) for (p, f, d) in edges if d == "collection")
                    items = getattr(self.results[coll_parent], coll_field)
                    base_path = self._path(iter_map)
                    for i in range(len(items)):
                        exec_id = f"{source_id}#{count}"
                        self._add_exec(ExecNode(exec_id, source_id, {**iter_map, source_id: exec_id},
                                                (*base_path, i), inputs, index=i))
                        count += 1
                else:
                    self._add_exec(ExecNode(f"{source_id}#{count}", source_id, iter_map, self._path(iter_map), inputs))
                    count += 1
        self._remaining[source_id] = count
        for child in plan.children[source_id]:
            self._unprepared_parents[child] -= 1
            if self._unprepared_parents[child] == 0:
                self._work.append(child)
        if count == 0:
            self._source_complete(source_id)

    def _source_complete(self, source_id: str) -> None:
        for child in self._plan.children[source_id]:
            self._incomplete_parents[child] -= 1
            if self._incomplete_parents[child] == 0 and self._plan.kind[child] == ITERATE_TYPE:
                self._work.append(child)

    # -- execution ---------------------------------------------------------------------------------
    def next(self) -> BaseInvocation | None:
        """The next node to run, with its inputs filled from its edges; None when nothing is left.

        Raises :class:`NodeInputError` when the inputs it receives fail the node's validation, and
        :class:`NodeLimitError` when a collect would gather more than ``max_collection_size`` items.
        """
        if self.errors:
            return None
        while self._ready:
            _, _, _, exec_id = heapq.heappop(self._ready)
            if exec_id not in self.executed:
                node = self.exec_nodes[exec_id]
                if self._plan.kind[node.source_id] == COLLECT_TYPE:
                    self._check_gather(node)
                return self._build(node)
        return None

    def _check_gather(self, node: ExecNode) -> None:
        """Count a collect's items before gathering them: the collections it is given only exist at run time."""
        total = 0
        for parent, out_field, in_field in node.inputs:
            total += len(getattr(self.results[parent], out_field)) if in_field == "collection" else 1
        if total > self.limits.max_collection_size:
            error = LimitExceededError(f"the number of items collect node {node.source_id!r} would gather", total,
                                       "max_collection_size", self.limits.max_collection_size)
            raise NodeLimitError(node.id, node.source_id, error)

    def _build(self, node: ExecNode) -> BaseInvocation:
        source = self.graph.nodes[node.source_id]
        cls = type(source)
        values = dict(source.__dict__)
        if source.__pydantic_extra__:
            values.update(source.__pydantic_extra__)  # a node class that takes undeclared fields (core_metadata)
        values["id"] = node.id
        kind = self._plan.kind[node.source_id]
        if kind == ITERATE_TYPE:
            parent, out_field, _ = next(i for i in node.inputs if i[2] == "collection")
            values["collection"] = getattr(self.results[parent], out_field)
            values["index"] = node.index
            # The collection is a validated output; re-validating it per item would make iterate quadratic.
            return cls.model_construct(_fields_set=set(source.model_fields_set), **values)
        if kind == COLLECT_TYPE:
            collection: list[Any] = []
            for parent, out_field, in_field in node.inputs:
                if in_field == "collection":
                    collection.extend(getattr(self.results[parent], out_field))
            # Never the edge order: the same graph written in another order collects the same list.
            items = sorted(
                ((self.exec_nodes[p].path, self.exec_nodes[p].source_id, f, getattr(self.results[p], f))
                 for p, f, d in node.inputs if d == "item"),
                key=lambda t: (t[0], t[1], t[2]),
            )
            collection.extend(value for *_, value in items)
            values["item"] = None
            values["collection"] = collection
        else:
            str_inputs = self._plan.str_inputs[node.source_id]
            for parent, out_field, in_field in node.inputs:
                value = getattr(self.results[parent], out_field)
                if in_field in str_inputs and type(value) in (int, float):
                    value = str(value)  # InvokeAI lets numbers feed string inputs
                values[in_field] = value
        try:
            # The limits go to the node's validators, so a size that arrived over an edge is refused before it runs.
            return cls.model_validate(values, context=self.limits.context)
        except ValidationError as exc:
            from_edges = {d for _, _, d in node.inputs}
            locs = [err["loc"] for err in exc.errors(include_url=False)]
            bad = next((str(loc[0]) for loc in locs if loc and loc[0] in from_edges), None)
            if bad is None:
                bad = str(locs[0][0]) if locs and locs[0] else "?"
            raise NodeInputError(node.id, node.source_id, bad, exc) from exc

    def complete(self, node_id: str, output: BaseInvocationOutput) -> None:
        """Record a prepared node's output and prepare whatever that makes possible."""
        if node_id in self.executed:
            return
        node = self.exec_nodes[node_id]
        self.results[node_id] = output
        self.executed.add(node_id)
        self.executed_history.append(node_id)
        for child in self._children.get(node_id, ()):
            self._pending[child] -= 1
            if self._pending[child] == 0:
                self._push_ready(self.exec_nodes[child])
        self._remaining[node.source_id] -= 1
        if self._remaining[node.source_id] == 0:
            self._source_complete(node.source_id)
        self._prepare_ready_sources()

    def set_node_error(self, record: NodeErrorRecord) -> None:
        """Mark a prepared node as failed; the session stops."""
        self.errors[record.node_id] = record

    def has_error(self) -> bool:
        return bool(self.errors)

    def is_complete(self) -> bool:
        """Whether nothing is left to run (or a node failed)."""
        return bool(self.errors) or not any(n not in self.executed for _, _, _, n in self._ready)

    # -- results by source node --------------------------------------------------------------------
    def source_results(self, source_id: str) -> list[BaseInvocationOutput]:
        """The outputs of every instance of a source node that ran, in iteration order."""
        ids = sorted(
            (i for i in self.source_prepared_mapping.get(source_id, ()) if i in self.results),
            key=lambda i: self.exec_nodes[i].path,
        )
        return [self.results[i] for i in ids]

    def results_by_source(self) -> dict[str, list[BaseInvocationOutput]]:
        """Outputs grouped by source node id (graph order), each list in iteration order."""
        return {s: self.source_results(s) for s in sorted(self._plan.order, key=self._plan.order.__getitem__)
                if self.source_prepared_mapping.get(s)}

    def errors_by_source(self) -> dict[str, list[NodeErrorRecord]]:
        out: dict[str, list[NodeErrorRecord]] = defaultdict(list)
        for record in self.errors.values():
            out[record.source_node_id].append(record)
        return dict(out)

    # -- persistence -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON data from which :meth:`from_dict` rebuilds this state exactly (a queue stores it per item)."""
        return {
            "id": self.id,
            "graph": self.graph.to_json_dict(),
            "prepared_sources": list(self.source_prepared_mapping),
            "exec_nodes": [n.to_dict() for n in self.exec_nodes.values()],
            "executed_history": list(self.executed_history),
            "results": {k: v.model_dump(mode="json") for k, v in self.results.items()},
            "errors": {k: v.to_dict() for k, v in self.errors.items()},
        }

    @classmethod
    def from_dict(
        cls, registry: FrozenRegistry, data: dict[str, Any], *, limits: Limits | None = None
    ) -> GraphExecutionState:
        """Rebuild a state saved with :meth:`to_dict`; nodes that had not finished run again."""
        graph = parse_graph(registry, data["graph"])
        state = cls.__new__(cls)
        state.id = data["id"]
        state.registry = registry
        state.graph = graph
        state.limits = limits or Limits.from_settings()
        state._plan = _Plan.build(graph)
        state.exec_nodes = {}
        state.source_prepared_mapping = {}
        state.executed = set()
        state.executed_history = []
        assert registry.output_adapter is not None
        state.results = {k: registry.output_adapter.validate_python(v) for k, v in data["results"].items()}
        state.errors = {k: NodeErrorRecord(**v) for k, v in data["errors"].items()}
        state._reset_indexes()
        state._work = []
        history = list(data["executed_history"])
        by_source: dict[str, list[ExecNode]] = defaultdict(list)
        for raw in data["exec_nodes"]:
            node = ExecNode.from_dict(raw)
            by_source[node.source_id].append(node)
        # Replay: register the prepared nodes source by source in the order they were prepared, then the runs.
        for source_id in data["prepared_sources"]:
            state.source_prepared_mapping[source_id] = []
            for node in by_source.get(source_id, ()):
                state._add_exec(node)
            state._remaining[source_id] = len(by_source.get(source_id, ()))
            for child in state._plan.children[source_id]:
                state._unprepared_parents[child] -= 1
            if not by_source.get(source_id):
                state._source_complete(source_id)
        executed_results = state.results
        state.results = {}
        for node_id in history:
            state.complete(node_id, executed_results[node_id])
        state._work = [n for n, c in state._unprepared_parents.items() if c == 0]
        state._prepare_ready_sources()
        return state
