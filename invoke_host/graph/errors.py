"""What graph validation reports: one :class:`GraphError` per problem, each naming a node and field."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["GraphError", "GraphValidationError", "refusal_message"]


@dataclass(frozen=True)
class GraphError:
    """One problem in a graph. ``node_id``/``field`` are None where the problem is not about one node or field."""

    node_id: str | None
    field: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        where = ".".join(p for p in (self.node_id, self.field) if p)
        return f"{where}: {self.message}" if where else self.message


def refusal_message(errors: list[GraphError]) -> str:
    """One line for a refused graph: its first problem, and how many more there are."""
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"the graph is invalid: {errors[0]}{more}"


class GraphValidationError(ValueError):
    """A graph was refused; :attr:`errors` lists every problem found."""

    def __init__(self, errors: list[GraphError]) -> None:
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"The graph is invalid ({len(errors)} problem{'s' if len(errors) != 1 else ''}):\n{lines}")
