"""Entry point: registers the log and websocket sinks (new ones per host) and the ``/ws`` route."""

from __future__ import annotations

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterEventSink, RegisterRoute

from invoke_core_events.log_sink import LogSink
from invoke_core_events.websocket_sink import WebSocketSink

__all__ = ["register_event_sinks", "register_routes"]


@hookimpl
def register_event_sinks(register: RegisterEventSink) -> None:
    register(LogSink())
    register(WebSocketSink())


@hookimpl
def register_routes(register: RegisterRoute) -> None:
    # Litestar is imported only when the host collects routes, never by merely loading the plugin.
    from invoke_core_events.socket_route import events_socket

    register(events_socket)
