"""Node failures: a bad incoming input found while preparing a node, and the record kept for any node error."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pydantic import ValidationError

__all__ = ["NodeErrorRecord", "NodeInputError"]


class NodeInputError(ValueError):
    """A prepared node's inputs, as received from its edges, failed the node's own validation."""

    def __init__(self, node_id: str, source_node_id: str, field: str, error: ValidationError) -> None:
        self.node_id = node_id
        self.source_node_id = source_node_id
        self.field = field
        self.original_error = error
        first = error.errors(include_url=False)[0]
        super().__init__(f"Node {source_node_id} has invalid incoming input for {field}: {first['msg']}")


@dataclass(frozen=True)
class NodeErrorRecord:
    """Why one prepared node failed."""

    node_id: str
    source_node_id: str
    error_type: str
    message: str
    traceback: str
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
