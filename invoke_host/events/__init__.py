"""Events in the host: the in-process bus. The sinks (log, websocket) are plugins (``invoke-core-events``)."""

from invoke_host.events.bus import EventBus
from invoke_host.events.relay_inbox import RelayInbox

__all__ = ["EventBus", "RelayInbox"]
