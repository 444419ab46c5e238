"""Events from other nodes on the bus: every sink gets them but the relays, and each node's inbox says what it is."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import invoke_core_events.plugin
import invoke_postgres_events.plugin
import invoke_postgres_storage.plugin
import pytest
from invoke_postgres_events.relay_sink import PostgresEventRelay
from invoke_sdk.events import EventInbox, QueueClearedEvent, RelayEventSink

from invoke_host.config import HostConfig
from invoke_host.events import EventBus, RelayInbox
from invoke_host.host import NodeShape, build_host
from tests.events.test_event_bus import RecordingSink
from tests.waiting import async_wait_until


class Relay(RecordingSink):
    """A relay that records what it is given to send, and wants only queue_cleared events."""

    def __init__(self) -> None:
        super().__init__("relay")
        self.inbox: EventInbox | None = None

    def attach(self, inbox: EventInbox) -> None:
        self.inbox = inbox

    def wants(self, event_name: str) -> bool:
        return event_name == "queue_cleared"


class Picky(RecordingSink):
    def wants(self, event_name: str) -> bool:
        return event_name == "test_picky"


async def test_a_remote_event_reaches_every_sink_but_the_relays_from_the_loop_and_from_threads() -> None:
    relay, local = Relay(), RecordingSink()
    assert isinstance(relay, RelayEventSink) and not isinstance(local, RelayEventSink)
    bus = EventBus([relay, local])
    await bus.start()
    mine, theirs, from_thread = (QueueClearedEvent.build(q) for q in ("mine", "theirs", "thread"))
    bus.emit(mine)
    bus.emit(theirs, remote=True)
    worker = threading.Thread(target=bus.emit, args=(from_thread,), kwargs={"remote": True})
    worker.start()
    worker.join()
    await async_wait_until(lambda: len(local.events) == 3, "the event emitted from a thread")
    await bus.stop()
    assert local.events == [mine, theirs, from_thread]
    assert relay.events == [mine]  # what came from elsewhere is never sent out again


async def test_wants_for_remote_events_asks_only_the_sinks_that_are_not_relays() -> None:
    bus = EventBus([Relay(), Picky()])
    await bus.start()
    assert bus.wants("queue_cleared") and not bus.wants("queue_cleared", remote=True)
    assert bus.wants("test_picky", remote=True)
    await bus.stop()
    assert not bus.wants("test_picky", remote=True)


@pytest.mark.parametrize(("shape", "serves"), [(NodeShape.API, True), (NodeShape.ALL_IN_ONE, True),
                                                (NodeShape.WORKER, False)])
def test_each_node_shape_gives_its_relay_an_inbox_saying_whether_it_has_clients(
    tmp_path: Path, shape: NodeShape, serves: bool
) -> None:
    host = build_host(HostConfig(root=tmp_path, database_url="postgresql://nowhere/db"),
                      [invoke_postgres_storage.plugin, invoke_core_events.plugin, invoke_postgres_events.plugin],
                      entry_points=False, shape=shape)
    relay = host.events.sink(PostgresEventRelay.name)
    assert isinstance(relay, PostgresEventRelay) and isinstance(relay.inbox, RelayInbox)
    assert relay.inbox.serves_clients is serves and relay.inbox.bus is host.events
    assert relay.url == "postgresql://nowhere/db"
    assert relay.inbox.event_types["events_missed"].__name__ == "EventsMissedEvent"
    assert relay.inbox.event_types["queue_cleared"] is QueueClearedEvent
    asyncio.run(_remote_events_skip_the_relay(host.events, relay))


async def _remote_events_skip_the_relay(bus: EventBus, relay: PostgresEventRelay) -> None:
    # The relay is left out of the start (there is no database here) and a recorder stands in for the clients.
    recorder = RecordingSink()
    bus.sinks = [*(s for s in bus.sinks if s is not relay), recorder]
    await bus.start()
    assert relay.inbox is not None
    event = QueueClearedEvent.build("q")
    relay.inbox.emit_remote(event)
    await bus.stop()
    assert recorder.events == [event]
