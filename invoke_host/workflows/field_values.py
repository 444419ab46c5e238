"""``{"<node id>.<field>": value}``: values a run of a saved workflow writes into its graph's nodes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from invoke_host.workflows.errors import WorkflowError

__all__ = ["with_values"]


def with_values(graph: Mapping[str, Any], values: Mapping[str, Any], workflow_id: str) -> dict[str, Any]:
    """A copy of ``graph`` with each value written into its node's field; 422 naming a key with no such node.

    The field is what follows the last dot (field names have none; node ids may). Whether the node has the field
    and takes the value is judged when the batch is enqueued, with the rest of the graph.
    """
    nodes = dict(graph.get("nodes") or {})
    problems: list[dict[str, Any]] = []
    for key, value in values.items():
        node_id, dot, field_name = key.rpartition(".")
        if not dot or not node_id or not field_name:
            problems.append({"key": key, "message": "a value's key is '<node id>.<field>'"})
            continue
        node = nodes.get(node_id)
        if not isinstance(node, Mapping):
            problems.append({"key": key, "node_id": node_id, "message": f"the workflow has no node {node_id!r}"})
            continue
        if field_name in ("id", "type", "version"):
            problems.append({"key": key, "node_id": node_id, "field": field_name,
                             "message": f"{field_name!r} is not an input a value can be given for"})
            continue
        nodes[node_id] = {**node, field_name: value}
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise WorkflowError(422, f"values for workflow {workflow_id!r}: {first['key']!r}: {first['message']}{more}",
                            problems)
    return {**graph, "nodes": nodes}
