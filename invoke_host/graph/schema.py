"""OpenAPI components for graphs: ``Graph``, ``Edge`` and ``EdgeConnection``.

``Graph.nodes`` refers to ``AnyInvocation``, the union the registry publishes, so the graph schema
does not repeat every node's schema.
"""

from __future__ import annotations

from typing import Any

from invoke_host.graph.edges import Edge

__all__ = ["graph_schema_components"]


def graph_schema_components() -> dict[str, Any]:
    edge = Edge.model_json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = dict(edge.pop("$defs", {}))
    components["Edge"] = edge
    components["Graph"] = {
        "title": "Graph",
        "type": "object",
        "description": "Nodes by id, and the edges between their fields.",
        "properties": {
            "id": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "The id of this graph"},
            "nodes": {
                "type": "object",
                "additionalProperties": {"$ref": "#/components/schemas/AnyInvocation"},
                "description": "The nodes, by id",
            },
            "edges": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Edge"},
                "description": "The connections between node fields",
            },
        },
        "additionalProperties": False,
    }
    return components
