"""Events in the host: the in-process bus and the first-party sinks (log, websocket)."""

from invoke_host.events.bus import EventBus
from invoke_host.events.log_sink import LogSink
from invoke_host.events.websocket_sink import WebSocketSink

__all__ = ["EventBus", "LogSink", "WebSocketSink"]
