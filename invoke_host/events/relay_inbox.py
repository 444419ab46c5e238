"""The host's :class:`~invoke_sdk.events.EventInbox`: how a relay sink hands other nodes' events to this node."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from invoke_sdk.events import BaseEvent

from invoke_host.events.bus import EventBus

__all__ = ["RelayInbox"]


@dataclass(frozen=True)
class RelayInbox:
    """One node's inbox over its bus: remote events skip the relays (no loops)."""

    bus: EventBus
    event_types: Mapping[str, type[BaseEvent]]
    serves_clients: bool

    def wants(self, event_name: str) -> bool:
        return self.bus.wants(event_name, remote=True)

    def emit_remote(self, event: BaseEvent) -> None:
        self.bus.emit(event, remote=True)
