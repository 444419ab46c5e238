"""What the runner reports while a session runs: node started, progress, completed, failed; session finished.

These are plain records for in-process callers (CLI, tests, queue processor), named apart from the SDK's
published events (``InvocationStartedEvent`` ...): the queue's node-event publisher
(:mod:`invoke_host.queue.node_events`) turns them into those typed events of one queue item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

__all__ = [
    "EngineEvent",
    "NodeCompleted",
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
