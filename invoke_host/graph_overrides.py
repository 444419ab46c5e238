"""``--set NODE.FIELD=VALUE`` and ``--batch NODE.FIELD=VALUES``: node field values typed in a shell.

A value is read as JSON when the field takes what that JSON is (``--set seed.value=42`` is the number 42), and
as the text itself otherwise (``--set prompt.prompt=1984`` gives a string field the text "1984", and
``--set prompt.prompt="a cat"`` needs no JSON quotes). ``--batch`` values are a JSON list
(``'prompt.prompt=["a cat, oil", "a dog"]'``) or comma-separated (``seed.value=1,2,3``); several ``--batch``
options run every combination of their values, as the queue's batch data groups do.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from invoke_host.queue.batch import Batch, BatchDatum
from invoke_host.registry import FrozenRegistry

__all__ = ["OverrideError", "apply_sets", "batch_with_data"]


class OverrideError(ValueError):
    """A ``--set`` or ``--batch`` the graph cannot take; the message says which option and why."""


def _split(option: str, text: str) -> tuple[str, str, str]:
    target, sep, value = text.partition("=")
    node_id, dot, field = target.strip().rpartition(".")
    if not sep or not dot or not node_id or not field:
        raise OverrideError(f"{option} takes NODE.FIELD=VALUE (the node's id in the graph, then the field), "
                            f"not {text!r}")
    return node_id, field, value


def _node_type(graph: dict[str, Any], option: str, node_id: str) -> str | None:
    nodes = graph.get("nodes")
    node = nodes.get(node_id) if isinstance(nodes, dict) else None
    if not isinstance(node, dict):
        known = ", ".join(sorted(nodes)) if isinstance(nodes, dict) else "none"
        raise OverrideError(f"{option} names node {node_id!r}, which is not in the graph (its nodes: {known})")
    type_id = node.get("type")
    return type_id if isinstance(type_id, str) else None


def _typed(registry: FrozenRegistry, type_id: str | None, field: str, text: str) -> Any:
    """``text`` as JSON if the field takes that value, else as the text itself (graph validation judges both)."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    registered = registry.invocations.get(type_id) if type_id is not None else None
    info = registered.value.model_fields.get(field) if registered is not None else None
    if info is None or isinstance(parsed, str):
        return parsed
    adapter: TypeAdapter[Any] = TypeAdapter(info.annotation)
    for candidate in (parsed, text):
        try:
            adapter.validate_python(candidate)
        except ValidationError:
            continue
        return candidate
    return parsed


def apply_sets(registry: FrozenRegistry, graph: dict[str, Any], sets: tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``graph`` with each ``--set`` value written into its node."""
    if not sets:
        return graph
    nodes = dict(graph.get("nodes") or {})
    for text in sets:
        node_id, field, value = _split("--set", text)
        type_id = _node_type({"nodes": nodes}, "--set", node_id)
        nodes[node_id] = {**nodes[node_id], field: _typed(registry, type_id, field, value)}
    return {**graph, "nodes": nodes}


def _values(text: str) -> list[str] | list[Any]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except ValueError as exc:
            raise OverrideError(f"--batch values {text!r} start like a JSON list but are not one: {exc}") from None
        return list(items)
    return [part.strip() for part in text.split(",")]


def batch_with_data(registry: FrozenRegistry, graph: dict[str, Any], batches: tuple[str, ...]) -> Batch:
    """The batch of ``graph`` whose data groups are the ``--batch`` options, one group each (every combination)."""
    groups: list[list[BatchDatum]] = []
    for text in batches:
        node_id, field, value = _split("--batch", text)
        type_id = _node_type(graph, "--batch", node_id)
        items = [v if not isinstance(v, str) else _typed(registry, type_id, field, v) for v in _values(value)]
        if not items:
            raise OverrideError(f"--batch {text!r} gives no values")
        groups.append([BatchDatum(node_path=node_id, field_name=field, items=items)])
    try:
        return Batch(graph=graph, data=groups or None)
    except ValidationError as exc:
        raise OverrideError("; ".join(e["msg"] for e in exc.errors())) from None
