"""Entry point: registers the relay sink (a new one per host) and the marker event for lost events."""

from __future__ import annotations

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterEvent, RegisterEventSink

from invoke_postgres_events.missed_events import EventsMissedEvent
from invoke_postgres_events.relay_sink import PostgresEventRelay

__all__ = ["register_event_sinks", "register_events"]


@hookimpl
def register_event_sinks(register: RegisterEventSink) -> None:
    register(PostgresEventRelay())


@hookimpl
def register_events(register: RegisterEvent) -> None:
    register(EventsMissedEvent)
