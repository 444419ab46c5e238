"""The marker a node's clients get when events from another node were lost on the way: reload what you show."""

from __future__ import annotations

from typing import ClassVar, Literal

from invoke_sdk.events import BaseEvent
from pydantic import Field

__all__ = ["EventsMissedEvent"]


class EventsMissedEvent(BaseEvent):
    """Events from other nodes were lost before they reached this node: a client should reload the state it shows.

    ``reason``: ``gap`` when a node's sequence numbers skipped (it dropped events its database could not take
    fast enough, or an event was over ``max_event_relay_bytes``, or its outbox row was pruned before this node read
    it); ``reconnected`` when this node's connection to the database dropped and was made again (whatever was
    sent meanwhile is gone). Goes to every client.
    """

    event_name: ClassVar[str] = "events_missed"

    reason: Literal["gap", "reconnected"]
    origin: str | None = Field(default=None, description="The node whose events were lost, when known")
    missed: int | None = Field(default=None, description="How many events were lost, when known")
