"""Batches: a graph plus data that fills node fields, expanded into one session per queue item.

``data`` is a list of groups. The data of one group are zipped (all the same length): item ``i``
of every datum goes into the same session. Groups combine as a cartesian product, and ``runs``
repeats the whole. A batch of one graph, no data and ``runs=3`` is three identical sessions.

Each queue item stores its own copy of the graph with its values written in, so a batch is refused
before it is expanded when it would pass ``max_batch_size`` items or ``max_batch_bytes`` of session
JSON; the graph and every datum are held to the host's other limits (see ``invoke_host.limits``).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple

import msgspec
from invoke_sdk.fields import field_extra
from invoke_sdk.limits import LimitExceededError
from invoke_sdk.session_queue import BatchRecord, NewQueueItem, NodeFieldValue
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from invoke_host.graph import GraphBase, refusal_message, registry_fingerprint, validate_graph
from invoke_host.graph.migration import stamp_versions, upgrade_graph
from invoke_host.limits import Limits
from invoke_host.queue.batch_workflow import workflow_text, workflow_with_values
from invoke_host.queue.model_affinity import main_model_key
from invoke_host.registry import FrozenRegistry

__all__ = [
    "Batch", "BatchDatum", "BatchError", "EnqueueBatchBody", "PreparedBatch", "batch_size", "expand", "prepare_batch",
    "prepare_items", "stored_bytes",
]


# The envelope is read from JSON with exactly its document's types: 0 is not false, "2" is not 2. (Node field
# values inside the graph and the data keep the node's own coercion rules; see docs/engine.md.)
_ENVELOPE = ConfigDict(extra="forbid", strict=True)


class BatchError(ValueError):
    """A batch the server refuses; ``status_code`` and a message a person can act on."""

    def __init__(self, status_code: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.errors = errors or []


class BatchDatum(BaseModel):
    """Values for one field of one node: ``items[i]`` goes into the ``i``-th session of its group."""

    model_config = _ENVELOPE

    node_path: str = Field(min_length=1, description="The id of the node in the graph")
    field_name: str = Field(min_length=1, description="The node field the values go into")
    items: list[Any] = Field(min_length=1, description="The values, one per session")


class Batch(BaseModel):
    """A graph and the data to run it with."""

    model_config = _ENVELOPE

    batch_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=200)
    graph: dict[str, Any] = Field(description="The graph: {'id'?, 'nodes': {node_id: node}, 'edges': [...]}")
    data: list[list[BatchDatum]] | None = Field(
        default=None, description="Groups of data: zipped within a group, cartesian product across groups"
    )
    runs: int = Field(default=1, ge=1, description="How many times to repeat the whole batch")
    origin: str | None = Field(default=None, max_length=200)
    destination: str | None = Field(default=None, max_length=200)
    workflow: str | dict[str, Any] | None = Field(
        default=None,
        description="The workflow (the client's editable form of the graph): JSON text, or the object itself as "
        "InvokeAI's client sends it. Each item stores it with that item's batch values written in, and the images "
        "the item saves embed it",
    )

    @model_validator(mode="after")
    def _check_data(self) -> Batch:
        seen: set[tuple[str, str]] = set()
        for g, group in enumerate(self.data or []):
            if not group:
                raise ValueError(f"data group {g} is empty: leave it out, or give it at least one datum")
            lengths = {len(d.items) for d in group}
            if len(lengths) > 1:
                sizes = ", ".join(f"{d.node_path}.{d.field_name}: {len(d.items)}" for d in group)
                raise ValueError(f"the data of group {g} are zipped and must be the same length ({sizes})")
            for d in group:
                if (d.node_path, d.field_name) in seen:
                    raise ValueError(f"{d.node_path}.{d.field_name} is given data twice")
                seen.add((d.node_path, d.field_name))
        nodes = self.graph.get("nodes", {})
        if not isinstance(nodes, dict):
            raise ValueError("graph.nodes must be an object mapping node ids to nodes")
        if self.workflow is not None:
            self.workflow = workflow_text(self.workflow)
        return self


class EnqueueBatchBody(BaseModel):
    """The body of ``POST /api/v1/queue/{queue_id}/enqueue_batch``."""

    model_config = _ENVELOPE

    batch: Batch
    prepend: bool = Field(default=False, description="Run this batch before everything already pending")


def batch_size(batch: Batch) -> int:
    """How many sessions the batch expands to, computed without expanding it."""
    return batch.runs * math.prod(len(group[0].items) for group in batch.data or [])


def expand(batch: Batch) -> Iterator[list[NodeFieldValue]]:
    """The field values of each session, in order: run by run, groups as a cartesian product."""
    groups = [
        [[NodeFieldValue(node_path=d.node_path, field_name=d.field_name, value=v) for v in d.items] for d in group]
        for group in batch.data or []
    ]
    zipped = [list(zip(*group, strict=True)) for group in groups]
    for _ in range(batch.runs):
        for combination in itertools.product(*zipped):
            yield [value for row in combination for value in row]


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


# What a session adds to its graph in the stored JSON:
# {"id": <32 hex>, "batch_id": ..., "graph": ..., "validated_with": <32 hex>}.
_SESSION_OVERHEAD = 116
# The keys around one field value: {"node_path":"","field_name":"","value":}, and "<field>": in the graph.
_VALUE_OVERHEAD = 52
# What the stored graph adds to each node: ,"version":"<MAJOR.MINOR.PATCH>" (versions up to 99.99.99).
_VERSION_OVERHEAD = 22


def stored_bytes(batch: Batch) -> int:
    """How many bytes of JSON the batch's queue items would store, computed without expanding it.

    Every item holds the graph, and each datum's value twice (written into the graph, and as a field
    value); a row of one group appears in as many items as the other groups and ``runs`` multiply.
    """
    groups = batch.data or []
    sizes = [len(group[0].items) for group in groups]
    count = batch.runs * math.prod(sizes)
    nodes = batch.graph.get("nodes")
    versions = _VERSION_OVERHEAD * (len(nodes) if isinstance(nodes, dict) else 0)  # stamped on each stored node
    # The workflow is stored as JSON text in a JSON string: its quotes are escaped, so counted twice at most.
    workflow = 2 * len(workflow_text(batch.workflow)) + 14 if batch.workflow is not None else 0
    total = count * (_json_size(batch.graph) + versions + len(batch.batch_id) + _SESSION_OVERHEAD + workflow)
    for g, group in enumerate(groups):
        group_bytes = sum(2 * (_json_size(item) + len(d.field_name)) + len(d.node_path) + _VALUE_OVERHEAD
                          for d in group for item in d.items)
        others = batch.runs * math.prod(n for h, n in enumerate(sizes) if h != g)
        total += group_bytes * others
    return total


def _edge_fed(graph: dict[str, Any]) -> set[tuple[str, str]]:
    """(node id, input) pairs an edge of the raw graph feeds; malformed edges are left to graph validation."""
    fed: set[tuple[str, str]] = set()
    edges = graph.get("edges")
    for edge in edges if isinstance(edges, list) else []:
        end = edge.get("destination") if isinstance(edge, dict) else None
        if isinstance(end, dict) and isinstance(end.get("node_id"), str) and isinstance(end.get("field"), str):
            fed.add((end["node_id"], end["field"]))
    return fed


def _validate_data(batch: Batch, registry: FrozenRegistry, limits: Limits | None = None) -> None:
    if not batch.data:
        return
    nodes: dict[str, Any] = batch.graph.get("nodes", {})
    errors: list[dict[str, Any]] = []
    fed = _edge_fed(batch.graph)
    for group in batch.data or []:
        for datum in group:
            node = nodes.get(datum.node_path)
            if not isinstance(node, dict):
                raise BatchError(
                    422, f"batch data names node {datum.node_path!r}, which is not in the graph",
                    [{"node_path": datum.node_path, "field_name": datum.field_name, "message": "no such node"}],
                )
            type_id = node.get("type")
            registered = registry.invocations.get(type_id) if isinstance(type_id, str) else None
            if registered is None or registry.invocation_adapter is None:
                raise BatchError(
                    422, f"node {datum.node_path!r} has type {type_id!r}, which no plugin registered",
                    [{"node_path": datum.node_path, "field_name": datum.field_name, "message": "unknown node type"}],
                )
            if datum.field_name not in registered.value.model_fields or datum.field_name in ("id", "type"):
                raise BatchError(
                    422, f"node {datum.node_path!r} (type {type_id!r}) has no input field {datum.field_name!r}",
                    [{"node_path": datum.node_path, "field_name": datum.field_name, "message": "no such field"}],
                )
            info = registered.value.model_fields[datum.field_name]
            if field_extra(info).get("input") == "connection" or (datum.node_path, datum.field_name) in fed:
                # Checked here for every item: the graph check below sees only the first item's values.
                how = "takes only an edge" if (datum.node_path, datum.field_name) not in fed else "is fed by an edge"
                raise BatchError(
                    422, f"batch data names input {datum.field_name!r} of node {datum.node_path!r}, which {how}; "
                    "give data only for inputs that take a value",
                    [{"node_path": datum.node_path, "field_name": datum.field_name, "message": f"the input {how}"}],
                )
            context = limits.context if limits is not None else None
            for index, value in enumerate(datum.items):
                if limits is not None:
                    try:
                        limits.measure(value, f"batch data item {index} for {datum.node_path}.{datum.field_name}")
                    except LimitExceededError as exc:
                        raise BatchError(413, str(exc), [{"node_path": datum.node_path, "field_name": datum.field_name,
                                                          "item_index": index, "message": str(exc)}]) from None
                try:
                    registry.invocation_adapter.validate_python({**node, datum.field_name: value}, context=context)
                except ValidationError as exc:
                    for err in exc.errors(include_url=False):
                        loc = [str(p) for p in err["loc"]]
                        # The union adapter puts the type tag first: drop it so the path names the field.
                        if loc and loc[0] == type_id:
                            loc = loc[1:]
                        if not loc or loc[0] != datum.field_name:
                            continue
                        errors.append(
                            {
                                "node_path": datum.node_path,
                                "field_name": datum.field_name,
                                "item_index": index,
                                "message": err["msg"],
                            }
                        )
                if len(errors) >= 20:
                    break
    if errors:
        first = errors[0]
        raise BatchError(
            422,
            f"batch data for node {first['node_path']!r} field {first['field_name']!r} "
            f"(item {first['item_index']}) is invalid: {first['message']}",
            errors,
        )


def _validate_graph(batch: Batch, registry: FrozenRegistry, limits: Limits | None = None) -> GraphBase:
    """The whole graph, as the engine will see it, with the first session's values written in; returned validated.

    Batch data may fill an input the graph leaves empty, so the graph is checked with data; the
    other sessions differ only in values, which :func:`_validate_data` checked one by one.
    """
    first = next(expand(batch), [])
    graph = batch.graph
    if first:
        nodes = dict(graph.get("nodes", {}))
        for v in first:
            nodes[v.node_path] = {**nodes[v.node_path], v.field_name: v.value}
        graph = {**graph, "nodes": nodes}
    validated = validate_graph(registry, graph, limits=limits)
    errors = validated.errors
    if errors or validated.graph is None:
        raise BatchError(422, refusal_message(errors), [e.to_dict() for e in errors[:50]])
    return validated.graph


_GRAPH_ENCODER = msgspec.json.Encoder()
_GRAPH_DECODER = msgspec.json.Decoder()
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _ascii_escape(match: re.Match[str]) -> str:
    """A non-ASCII character as json.dumps escapes it: \\uXXXX in lower case, a surrogate pair above U+FFFF."""
    code = ord(match.group())
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def graph_json(graph: dict[str, Any]) -> str:
    """The graph as compact JSON text, ASCII only, of exactly the value ``json.dumps(graph, separators=(",", ":"))``
    writes (the stored session's graph).

    msgspec writes it in a tenth of json.dumps's time (0.2-0.3 against 1.6-3 ms for a 1,000-node chain, issue #11),
    but it writes NaN and infinities as null, non-ASCII text raw, and also writes what json.dumps refuses (a set, a
    date, bytes, ...). So its text is kept only where the graph held JSON's own values: text without ``null`` held
    no NaN, and then the graph must equal what msgspec makes of it in JSON's types (``to_builtins``: a set becomes
    a list, a date text, a key that is not text becomes text); text with ``null`` must decode back to a value equal
    to the graph (NaN never equals None). Any other graph goes to json.dumps, which writes NaN and Infinity, or
    raises, as before. (Decoding and comparing every graph was the first form: on the server's system allocator it
    cost more than json.dumps saved.) Non-ASCII characters are then escaped as json.dumps escapes them, so the text
    stays ASCII and its length is its size in bytes (``_SharedSession.item_bytes``). Spellings may differ from
    json.dumps's (1e16 for 1e+16, a raw DEL), never values.
    """
    try:
        encoded = _GRAPH_ENCODER.encode(graph)
        if b"null" in encoded:
            same = _GRAPH_DECODER.decode(encoded) == graph
        else:
            same = msgspec.to_builtins(graph, str_keys=True) == graph
    except (TypeError, ValueError, OverflowError, RecursionError, msgspec.MsgspecError):
        same = False  # a type neither writes, text with a lone surrogate, a graph nested past msgspec's limit
    if not same:
        return json.dumps(graph, separators=(",", ":"))
    text = encoded.decode()
    return text if encoded.isascii() else _NON_ASCII.sub(_ascii_escape, text)


class _SharedSession(NamedTuple):
    """The parts of the session JSON that every item of a batch without data shares (the same text json.dumps
    makes of the whole session)."""

    graph_json: str
    tail: str
    """``,"workflow":...`` or nothing."""

    def session_json(self, session_id: str, batch_id: str, checked: str) -> str:
        return (f'{{"id":{json.dumps(session_id)},"batch_id":{json.dumps(batch_id)},'
                f'"graph":{self.graph_json},"validated_with":{json.dumps(checked)}{self.tail}}}')

    def item_bytes(self, batch_id: str, checked: str) -> int:
        """The size of each item's session JSON: ASCII (json.dumps escapes the rest), so characters are bytes."""
        return len(self.session_json(uuid.UUID(int=0).hex, batch_id, checked))


class PreparedBatch(NamedTuple):
    """What :func:`prepare_batch` makes of a batch."""

    record: BatchRecord
    items: list[NewQueueItem]
    graph: GraphBase
    """The graph as validated: the nodes of the sessions in ``graph_sessions``, ready for the engine."""
    graph_sessions: list[str]
    """The session ids that may run ``graph`` as it is: the first item's (its graph is exactly ``graph``)."""
    workflow: str | None = None
    """The ``workflow`` text stored in the sessions of ``graph_sessions`` (None: the batch has none)."""


def upgraded_batch(batch: Batch, registry: FrozenRegistry) -> Batch:
    """``batch`` with its graph's older nodes migrated to the installed versions (``version`` keys removed), before
    its data are checked against the nodes; BatchError (422) naming each node that cannot be."""
    graph, errors = upgrade_graph(registry, batch.graph)
    if errors:
        raise BatchError(422, refusal_message(errors), [e.to_dict() for e in errors[:50]])
    return batch.model_copy(update={"graph": graph})


def prepare_items(
    queue_id: str, batch: Batch, registry: FrozenRegistry, max_batch_size: int, limits: Limits | None = None
) -> tuple[BatchRecord, list[NewQueueItem]]:
    """The batch's record and queue items (see :func:`prepare_batch`)."""
    prepared = prepare_batch(queue_id, batch, registry, max_batch_size, limits)
    return prepared.record, prepared.items


def prepare_batch(
    queue_id: str, batch: Batch, registry: FrozenRegistry, max_batch_size: int, limits: Limits | None = None
) -> PreparedBatch:
    """Check the batch against the registry and the limits (the host's defaults if None), and build its sessions.

    Each session is ``{"id", "batch_id", "graph", "validated_with"}`` with the batch's values written into the
    graph's nodes; the processor builds its execution state from ``session["graph"]``, and checks its structure
    again only when its registry's fingerprint is not ``validated_with`` (see ``invoke_host.graph.fingerprint``).
    """
    requested = batch_size(batch)
    if requested > max_batch_size:
        raise BatchError(
            413,
            f"the batch expands to {requested} queue items, more than the limit of {max_batch_size} "
            "(INVOKE_HOST_MAX_BATCH_SIZE); split it into smaller batches",
        )
    limits = limits or Limits.from_settings()
    batch = upgraded_batch(batch, registry)
    # The processor rebuilds the nodes of a graph this registry validated without checking its structure again.
    checked = registry_fingerprint(registry)
    graph = stamp_versions(registry, batch.graph)  # a claim after a pack upgrade knows which version it holds
    workflow = workflow_text(batch.workflow) if batch.workflow is not None else None
    shared: _SharedSession | None = None
    if not batch.data:
        # The same graph in every session: encoded once, here, and that text's length is what each item stores
        # (json.dumps once, not also for an estimate: 5% of a 1,000-node enqueue).
        shared = _SharedSession(graph_json(graph),
                                f',"workflow":{json.dumps(workflow)}' if workflow is not None else "")
    size = requested * shared.item_bytes(batch.batch_id, checked) if shared is not None else stored_bytes(batch)
    try:
        limits.check("max_batch_bytes", size,
                     f"the size in bytes of the session JSON its {requested} queue items would store")
    except LimitExceededError as exc:
        raise BatchError(413, f"the batch is too large: {exc}") from None
    _validate_data(batch, registry, limits)
    validated = _validate_graph(batch, registry, limits)
    record = BatchRecord(
        batch_id=batch.batch_id,
        queue_id=queue_id,
        runs=batch.runs,
        requested=requested,
        origin=batch.origin,
        destination=batch.destination,
    )
    nodes: dict[str, Any] = graph.get("nodes", {})
    items: list[NewQueueItem] = []
    graph_model = main_model_key(nodes)  # once per batch: only batch values can change it per item
    first_workflow = workflow  # what the first item's session stores: with its values written in, if it has any
    for values in expand(batch):
        session_id = uuid.uuid4().hex
        if values:
            new_nodes = dict(nodes)
            for v in values:
                node = new_nodes[v.node_path] = dict(new_nodes[v.node_path])
                node[v.field_name] = v.value
            session_graph = {**graph, "nodes": new_nodes}
            session = {"id": session_id, "batch_id": batch.batch_id, "graph": session_graph,
                       "validated_with": checked}
            if workflow is not None:
                item_workflow = session["workflow"] = workflow_with_values(workflow, values)
                if not items:
                    first_workflow = item_workflow
            session_json = json.dumps(session, separators=(",", ":"))
        else:
            assert shared is not None  # a batch without data
            session_json = shared.session_json(session_id, batch.batch_id, checked)
        items.append(
            NewQueueItem(
                session_id=session_id,
                session_json=session_json,
                field_values=values or None,
                model_key=main_model_key({}, values) or graph_model if values else graph_model,
            )
        )
    # The validated graph is the first session's (its values were written in before validating). Without data
    # every session's graph is the same, but only one session gets these node objects: the engine copies a node's
    # fields shallowly into each instance, so two sessions sharing one object would share its mutable inputs.
    return PreparedBatch(record, items, validated, [items[0].session_id], first_workflow)
