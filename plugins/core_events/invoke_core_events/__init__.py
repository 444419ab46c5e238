"""First-party event sinks: every event to the log, and live events to websocket clients at ``/ws``."""

from invoke_core_events.log_sink import LogSink
from invoke_core_events.websocket_sink import CLOSE_GOING_AWAY, CLOSE_TOO_SLOW, WebSocketClient, WebSocketSink

__all__ = ["CLOSE_GOING_AWAY", "CLOSE_TOO_SLOW", "LogSink", "WebSocketClient", "WebSocketSink"]
