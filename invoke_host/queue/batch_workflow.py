"""A batch's workflow: kept as JSON text, with each item's batch values written into the nodes they fill.

InvokeAI's workflow shape is ``{"nodes": [{"id", "type": "invocation", "data": {"id", "type", "inputs": {field:
{"name", "value", ...}}}}], "edges": [...], ...}``. A value a batch puts into ``node_path.field_name`` of the graph
is written into ``data.inputs[field_name].value`` of the workflow node whose ``data.id`` (or ``id``) is ``node_path``,
so an image's workflow opens in the editor with the values that made it. A workflow of another shape is kept as
given: it is the client's document, and the graph already holds the values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from invoke_sdk.session_queue import NodeFieldValue

__all__ = ["workflow_text", "workflow_with_values"]


def workflow_text(workflow: str | dict[str, Any]) -> str:
    """The workflow as JSON text: text is checked to be a JSON object and kept as given; an object is dumped."""
    if not isinstance(workflow, str):
        return json.dumps(workflow, separators=(",", ":"))
    try:
        parsed = json.loads(workflow)
    except ValueError as exc:
        raise ValueError(f"the workflow must be JSON text of an object: {exc}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"the workflow must be a JSON object, not {type(parsed).__name__}")
    return workflow


def _node_inputs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Workflow node id -> its ``data.inputs``, for the nodes of InvokeAI's shape."""
    found: dict[str, dict[str, Any]] = {}
    nodes = workflow.get("nodes")
    for node in nodes if isinstance(nodes, list) else []:
        data = node.get("data") if isinstance(node, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("inputs"), dict):
            continue
        node_id = data.get("id", node.get("id"))
        if isinstance(node_id, str):
            found[node_id] = data["inputs"]
    return found


def workflow_with_values(text: str, values: Sequence[NodeFieldValue]) -> str:
    """``text`` with ``values`` written into the inputs they fill; unchanged (the same text) when none applies."""
    workflow = json.loads(text)
    inputs = _node_inputs(workflow)
    changed = False
    for value in values:
        node_inputs = inputs.get(value.node_path)
        if node_inputs is None:
            continue
        field = node_inputs.get(value.field_name)
        if isinstance(field, dict):
            field["value"] = value.value
        else:
            node_inputs[value.field_name] = {"name": value.field_name, "value": value.value}
        changed = True
    return json.dumps(workflow, separators=(",", ":")) if changed else text
