"""Edges: a node output field connected to a node input field."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Edge", "EdgeConnection"]


class EdgeConnection(BaseModel):
    """One end of an edge: a node id and a field name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node_id: str = Field(description="The id of the node")
    field: str = Field(description="The name of the field on that node")


class Edge(BaseModel):
    """A connection from a node's output field to another node's input field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: EdgeConnection = Field(description="The output side: node id and output field")
    destination: EdgeConnection = Field(description="The input side: node id and input field")

    def describe(self) -> str:
        return f"{self.source.node_id}.{self.source.field} -> {self.destination.node_id}.{self.destination.field}"
