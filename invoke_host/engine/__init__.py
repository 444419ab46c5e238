"""The graph engine: execution state, the session runner, the output cache and the node context."""

from invoke_host.engine.cache import OutputCache
from invoke_host.engine.context import HostInvocationContext, NodeUtil, ServiceUnavailableError
from invoke_host.engine.errors import NodeErrorRecord, NodeInputError, NodeLimitError
from invoke_host.engine.events import (
    EngineEvent,
    NodeCompleted,
    NodeEventHooks,
    NodeFailed,
    NodeProgress,
    NodeStarted,
    SessionFinished,
    SessionStatus,
)
from invoke_host.engine.node_services import NodeServices
from invoke_host.engine.runner import SessionResult, SessionRunner, run_graph, run_graph_async
from invoke_host.engine.state import ExecNode, GraphExecutionState

__all__ = [
    "EngineEvent",
    "ExecNode",
    "GraphExecutionState",
    "HostInvocationContext",
    "NodeCompleted",
    "NodeErrorRecord",
    "NodeEventHooks",
    "NodeFailed",
    "NodeInputError",
    "NodeLimitError",
    "NodeProgress",
    "NodeServices",
    "NodeStarted",
    "NodeUtil",
    "OutputCache",
    "ServiceUnavailableError",
    "SessionFinished",
    "SessionResult",
    "SessionRunner",
    "SessionStatus",
    "run_graph",
    "run_graph_async",
]
