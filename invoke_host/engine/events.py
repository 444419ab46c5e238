"""What the runner reports while a session runs: node started, progress, completed, failed; session finished.

These are plain records for in-process callers (CLI, tests, queue processor), named apart from the SDK's
published events (``InvocationStartedEvent`` ...): the queue's node-event publisher
(:mod:`invoke_host.queue.node_events`) turns them into those typed events of one queue item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

__all__ = [
    "EngineEvent",
    "NodeCompleted",
    "NodeEventHooks",
    "NodeFailed",
    "NodeProgress",
    "NodeStarted",
    "SessionFinished",
    "SessionStatus",
]

SessionStatus = Literal["completed", "failed", "canceled"]


@dataclass(frozen=True)
class EngineEvent:
    name: ClassVar[str] = "engine_event"
    session_id: str


@dataclass(frozen=True)
class _NodeEvent(EngineEvent):
    node_id: str
    source_node_id: str
    invocation_type: str
    # The prepared node (inputs resolved), for listeners that publish it; None where it could not be built.
    invocation: Any = field(default=None, kw_only=True, compare=False, repr=False)


@dataclass(frozen=True)
class NodeStarted(_NodeEvent):
    name: ClassVar[str] = "node_started"


@dataclass(frozen=True)
class NodeProgress(_NodeEvent):
    name: ClassVar[str] = "node_progress"
    message: str
    percentage: float | None = None
    image: Any = None


@dataclass(frozen=True)
class NodeCompleted(_NodeEvent):
    name: ClassVar[str] = "node_completed"
    output: Any
    cached: bool = False


@dataclass(frozen=True)
class NodeFailed(_NodeEvent):
    name: ClassVar[str] = "node_failed"
    error_type: str
    error_message: str
    error_traceback: str


@dataclass(frozen=True)
class SessionFinished(EngineEvent):
    name: ClassVar[str] = "session_finished"
    status: SessionStatus


class NodeEventHooks(Protocol):
    """A listener's own calls for a node's start and completion, the bulk of a graph's events.

    Given to the runner, it is called instead of ``on_event`` with a :class:`NodeStarted` or :class:`NodeCompleted`,
    so that no record is made per node (a frozen dataclass of six to eight fields, about as costly as writing the
    event's message). Called on the runner's thread, only for the nodes ``wants_node_events`` said yes to; what it
    raises is logged, never fails the graph.
    """

    def node_started(self, invocation: Any, source_node_id: str) -> None:
        """``invocation`` (prepared, inputs resolved) starts; ``source_node_id``: the graph's node it came from."""
        ...

    def node_completed(self, invocation: Any, source_node_id: str, output: Any, cached: bool) -> None:
        """``invocation`` completed with ``output`` (``cached``: taken from the output cache, not run)."""
        ...
