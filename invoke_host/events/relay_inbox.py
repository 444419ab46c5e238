"""The host's :class:`~invoke_sdk.events.EventInbox`: how a relay sink hands other nodes' events to this node."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from invoke_sdk.events import BaseEvent, SelectiveEventSink

from invoke_host.events.bus import EventBus

__all__ = ["RelayInbox"]


@dataclass(frozen=True)
class RelayInbox:
    """One node's inbox over its bus: remote events skip the relays (no loops).

    A node with clients wants whatever a sink of its bus wants. A node without (a worker) wants only what
    ``holders`` ask for: the sinks that drop what this node holds once another node changed it (the output cache on
    an image delete, the model caches on a model edit), so a worker is not handed every other node's progress.
    """

    bus: EventBus
    event_types: Mapping[str, type[BaseEvent]]
    serves_clients: bool
    holders: Sequence[SelectiveEventSink] = ()

    def wants(self, event_name: str) -> bool:
        if self.serves_clients:
            return self.bus.wants(event_name, remote=True)
        return any(sink.wants(event_name) for sink in self.holders)

    def emit_remote(self, event: BaseEvent) -> None:
        self.bus.emit(event, remote=True)
