"""Node failures: a bad incoming input, a host limit passed, and the record kept for any node error."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from invoke_sdk.limits import LimitExceededError
from pydantic import ValidationError

__all__ = ["NodeErrorRecord", "NodeInputError", "NodeLimitError"]


class NodeInputError(ValueError):
    """A prepared node's inputs, as received from its edges, failed the node's own validation."""

    def __init__(self, node_id: str, source_node_id: str, field: str, error: ValidationError) -> None:
        self.node_id = node_id
        self.source_node_id = source_node_id
        self.field = field
        self.original_error = error
        first = error.errors(include_url=False)[0]
        super().__init__(f"Node {source_node_id} has invalid incoming input for {field}: {first['msg']}")


class NodeLimitError(ValueError):
    """Preparing or gathering a node would pass a host limit (``error`` names the setting); the session stops.

    ``node_id`` is the prepared instance, or the id the first instance would have had when the limit stopped
    the node from being prepared at all (an iterate over too many items).
    """

    def __init__(self, node_id: str, source_node_id: str, error: LimitExceededError) -> None:
        self.node_id = node_id
        self.source_node_id = source_node_id
        self.original_error = error
        super().__init__(f"Node {source_node_id}: {error}")


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
