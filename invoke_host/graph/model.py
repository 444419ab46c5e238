"""The ``Graph`` pydantic model that holds a validated graph, the same for every frozen registry.

Its ``nodes`` are typed ``Any``: :func:`~invoke_host.graph.validation.validate_graph` validates each node by the
class its ``type`` names and builds the graph with ``model_construct``, and a node dumps as its own class. A field
typed with the union of every node class would build (and, restored from the node catalogue, import) every class
of every pack the first time any graph is validated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from invoke_host.graph.edges import Edge

if TYPE_CHECKING:
    from invoke_host.registry import FrozenRegistry

__all__ = ["COLLECT_TYPE", "ITERATE_TYPE", "GraphBase", "graph_model"]

ITERATE_TYPE = "iterate"
"""The type id the engine expands into one branch per item of its ``collection`` input."""
COLLECT_TYPE = "collect"
"""The type id the engine gives every ``item`` of every iteration, in iteration order."""


class GraphBase(BaseModel):
    """Fields every graph model has; :class:`Graph` adds ``nodes`` and ``edges``."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, description="The id of this graph")

    if TYPE_CHECKING:
        nodes: dict[str, Any]
        edges: list[Edge]

    def to_json_dict(self) -> dict[str, Any]:
        """The graph as JSON data: exactly the fields that were given (so JSON in, the same JSON out)."""
        return self.model_dump(mode="json", exclude_unset=True)

    def to_saved_dict(self) -> dict[str, Any]:
        """The graph as images embed it: the fields that were given, with each node's ``id`` and the ``edges``
        always present (InvokeAI's image reader refuses a graph without edges, and its nodes carry their ids)."""
        data = self.to_json_dict()
        nodes = data.get("nodes", {})
        data["nodes"] = {node_id: {"id": node_id, **node} for node_id, node in nodes.items()}
        data.setdefault("edges", [])
        return data


class Graph(GraphBase):
    """A graph validated against some registry: its nodes by id and its edges."""

    nodes: dict[str, Any] = Field(default_factory=dict, description="The nodes, by id")
    edges: list[Edge] = Field(default_factory=list, description="The connections between node fields")


def graph_model(registry: FrozenRegistry) -> type[GraphBase]:
    """The ``Graph`` model of graphs validated against ``registry``: one for every registry, since its nodes are
    validated one by one (by the class their ``type`` names) before it is built."""
    return Graph
