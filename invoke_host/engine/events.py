"""What the runner reports while a session runs. Each event has a ``name`` like InvokeAI's socket events.

These are plain records for in-process callers (CLI, tests, queue processor); the queue's event
service turns them into its typed, published events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

__all__ = [
    "EngineEvent",
    "InvocationComplete",
    "InvocationError",
    "InvocationProgress",
    "InvocationStarted",
    "SessionComplete",
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
class InvocationStarted(_NodeEvent):
    name: ClassVar[str] = "invocation_started"


@dataclass(frozen=True)
class InvocationProgress(_NodeEvent):
    name: ClassVar[str] = "invocation_progress"
    message: str
    percentage: float | None = None
    image: Any = None


@dataclass(frozen=True)
class InvocationComplete(_NodeEvent):
    name: ClassVar[str] = "invocation_complete"
    output: Any
    cached: bool = False


@dataclass(frozen=True)
class InvocationError(_NodeEvent):
    name: ClassVar[str] = "invocation_error"
    error_type: str
    error_message: str
    error_traceback: str


@dataclass(frozen=True)
class SessionComplete(EngineEvent):
    name: ClassVar[str] = "session_complete"
    status: SessionStatus
