"""The session JSON a queue item keeps: the engine's execution state plus results and errors by source node.

Shape (documented in docs/queue.md)::

    {"id", "batch_id", "graph",                       # as enqueued
     "prepared_sources", "exec_nodes", "executed_history",
     "results": {prepared_id: output}, "errors": {prepared_id: error},   # GraphExecutionState.to_dict()
     "source_results": {source_node_id: [prepared_id, ...]},            # iteration order
     "source_errors": {source_node_id: [prepared_id, ...]}}

``GraphExecutionState.from_dict`` reads it back (it ignores the extra keys). Outputs are stored once
(under ``results``); the by-source views list prepared ids so a client reads a source node's
outputs as ``[results[i] for i in source_results[node_id]]`` without copying them twice.
"""

from __future__ import annotations

import json
from typing import Any

from invoke_host.engine import GraphExecutionState

__all__ = ["session_dict", "session_json"]


def session_dict(state: GraphExecutionState, batch_id: str) -> dict[str, Any]:
    """The item's session as JSON data. Call on the thread that runs the state (it reads live dicts)."""
    data = state.to_dict()
    data["batch_id"] = batch_id
    by_source: dict[str, list[str]] = {}
    for source_id, prepared in state.source_prepared_mapping.items():
        done = [i for i in prepared if i in state.results]
        if done:
            done.sort(key=lambda i: state.exec_nodes[i].path)
            by_source[source_id] = done
    data["source_results"] = by_source
    errors: dict[str, list[str]] = {}
    for prepared_id, record in state.errors.items():
        errors.setdefault(record.source_node_id, []).append(prepared_id)
    data["source_errors"] = errors
    return data


def session_json(state: GraphExecutionState, batch_id: str) -> str:
    """:func:`session_dict` as compact JSON text."""
    return json.dumps(session_dict(state, batch_id), separators=(",", ":"))
