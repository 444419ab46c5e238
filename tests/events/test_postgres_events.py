"""Events between nodes through one real PostgreSQL: in order, large ones through the outbox, never echoed to their
own node, surviving a dropped connection, and never stalling the node that emits them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from invoke_postgres_events.interest import GATED
from invoke_postgres_events.interest import TABLE as INTEREST_TABLE
from invoke_postgres_events.listener import Listener
from invoke_postgres_events.missed_events import EventsMissedEvent
from invoke_postgres_events.outbox import TABLE
from invoke_postgres_events.relay_sink import PostgresEventRelay
from invoke_postgres_events.wire import CHANNEL, NOTIFY_MAX_BYTES, encode
from invoke_sdk.events import CORE_EVENTS, BaseEvent, QueueClearedEvent, QueueItemsCanceledEvent

from invoke_host.events import EventBus, RelayInbox
from tests.events.test_event_bus import RecordingSink
from tests.postgres_server import PostgresServer, _free_port
from tests.waiting import async_wait_until

EVENT_TYPES: dict[str, type[BaseEvent]] = {c.event_name: c for c in (*CORE_EVENTS, EventsMissedEvent)}


class Node:
    """One node's bus, with the relay and a sink that records what reaches this node's clients."""

    def __init__(self, url: str, *, serves_clients: bool = True, **settings: Any) -> None:
        self.relay = PostgresEventRelay()
        self.relay.configure({"database_url": url, **settings})
        self.clients = RecordingSink()
        self.bus = EventBus([self.relay, self.clients])
        self.relay.attach(RelayInbox(self.bus, EVENT_TYPES, serves_clients=serves_clients))

    def relay_inbox(self) -> RelayInbox:
        assert isinstance(self.relay.inbox, RelayInbox)
        return self.relay.inbox

    def received(self, kind: type[BaseEvent] = QueueItemsCanceledEvent) -> list[Any]:
        return [e for e in self.clients.events if isinstance(e, kind)]


@asynccontextmanager
async def nodes(*made: Node) -> AsyncIterator[None]:
    for node in made:
        await node.bus.start()
    try:
        yield
    finally:
        for node in made:
            await node.bus.stop()


def item(n: int, queue_id: str = "q", size: int = 0) -> QueueItemsCanceledEvent:
    """A small event naming item ``n``; ``size`` more ids make it about ``6 * size`` bytes larger.

    Its timestamp is fixed: the text of ``time.time()`` varies in length (``...041.0068097`` against ``...041.00681``),
    and the NOTIFY-limit test needs two events whose sizes are known to the byte.
    """
    event = QueueItemsCanceledEvent.build(queue_id, [n, *range(100_000, 100_000 + size)])
    return event.model_copy(update={"timestamp": 1_796_000_000.25})


def ids(events: list[Any]) -> list[int]:
    return [e.item_ids[0] for e in events]


async def until(condition: Callable[[], bool], what: str) -> None:
    await async_wait_until(condition, what, timeout=20)


async def test_events_of_one_node_reach_another_in_order_and_never_come_back(postgres_url: str) -> None:
    a, b = Node(postgres_url), Node(postgres_url)
    async with nodes(a, b):
        for n in range(500):
            a.bus.emit(item(n))
            if n % 50 == 0:
                await asyncio.sleep(0)  # sent in several batches, not one
        await until(lambda: len(b.received()) >= 500, "node B to receive node A's 500 events")
        assert ids(b.received()) == list(range(500))
        # B sends one event after it has everything: A gets it, and anything B had bounced back would come first.
        b.bus.emit(item(-1, "sentinel"))
        await until(lambda: any(e.queue_id == "sentinel" for e in a.received()), "node A to receive B's event")
        assert ids(a.received()) == [*range(500), -1]  # its own once (from its own bus), then B's
        assert ids(b.received()) == [*range(500), -1]
        assert a.relay.listener is not None and a.relay.listener.delivered == 1


async def test_an_event_over_the_notify_limit_goes_through_the_outbox(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    a, b = Node(postgres_url), Node(postgres_url)
    # The largest event that still fits NOTIFY, and the smallest that does not.
    fits = next(item(0, size=s) for s in range(1000, 2000) if len(_payload(item(0, size=s + 1))) > NOTIFY_MAX_BYTES)
    over = item(1, size=len(fits.item_ids))
    assert len(_payload(fits)) <= NOTIFY_MAX_BYTES < len(_payload(over))
    huge = item(2, size=200_000)  # about 1.4 MB
    async with nodes(a, b):
        a.bus.emit(fits)
        await until(lambda: len(b.received()) == 1, "the event that fits")
        assert postgres_server.psql(f"SELECT count(*) FROM {TABLE}", database) == "0"
        a.bus.emit(over)
        a.bus.emit(huge)
        a.bus.emit(item(3))
        await until(lambda: len(b.received()) == 4, "the large events and the one after them")
    assert [e.item_ids for e in b.received()] == [e.item_ids for e in (fits, over, huge, item(3))]
    assert postgres_server.psql(f"SELECT count(*) FROM {TABLE}", database) == "2"


def _payload(event: QueueItemsCanceledEvent) -> bytes:
    return encode("0123456789abcdef", 1, event.event_name, event.model_dump_json()).encode()


async def test_outbox_rows_are_pruned_beyond_the_newest_max_rows(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    a, b = Node(postgres_url, max_event_relay_outbox_rows=2), Node(postgres_url)
    async with nodes(a, b):
        for n in range(5):
            a.bus.emit(item(n, size=2000))
            await until(lambda n=n: len(b.received()) == n + 1, f"large event {n}")
    assert ids(b.received()) == [0, 1, 2, 3, 4]
    remaining = postgres_server.psql(f"SELECT count(*) FROM {TABLE}", database)
    assert remaining == "2"


async def test_an_event_over_max_event_relay_bytes_is_not_sent_and_the_gap_is_reported(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = Node(postgres_url, max_event_relay_bytes=20_000), Node(postgres_url)
    async with nodes(a, b):
        a.bus.emit(item(0))
        a.bus.emit(item(1, size=5000))  # about 35 kB
        a.bus.emit(item(2))
        await until(lambda: len(b.received()) == 2, "the events around the large one")
        assert ids(b.received()) == [0, 2]
        [missed] = b.received(EventsMissedEvent)
        assert (missed.reason, missed.origin, missed.missed) == ("gap", a.relay.origin, 1)
    assert "INVOKE_HOST_MAX_EVENT_RELAY_BYTES=20000" in caplog.text


async def test_the_listener_reconnects_after_its_connection_is_killed(
    postgres_url: str, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = Node(postgres_url), Node(postgres_url)
    async with nodes(a, b):
        listener = b.relay.listener
        assert listener is not None and listener.backend_pid is not None
        a.bus.emit(item(0))
        await until(lambda: len(b.received()) == 1, "the first event")
        killed = listener.backend_pid
        assert postgres_server.psql(f"SELECT pg_terminate_backend({killed})") == "t"
        await until(lambda: listener.listening.is_set() and listener.backend_pid != killed, "a new LISTEN connection")
        a.bus.emit(item(1))
        await until(lambda: len(b.received()) == 2, "an event after the reconnect")
        assert ids(b.received()) == [0, 1]
        [missed] = b.received(EventsMissedEvent)
        assert missed.reason == "reconnected"
    assert "Lost the connection that receives other nodes' events" in caplog.text


async def test_a_full_send_queue_drops_the_oldest_and_never_blocks_emit(caplog: pytest.LogCaptureFixture) -> None:
    # Nothing listens on this port: the database is down, for as long as the test runs.
    a = Node(f"postgresql://postgres@127.0.0.1:{_free_port()}/none", max_event_relay_backlog=10)
    with caplog.at_level(logging.WARNING, "invoke_host.events.postgres"):
        async with nodes(a):
            for n in range(50):
                a.bus.emit(item(n))  # returns at once: the bus would block the loop, and this test, otherwise
            publisher = a.relay.publisher
            assert publisher is not None and not publisher.connected.is_set()
            assert [seq for seq, _ in publisher.queue] == list(range(41, 51))
            assert [e.item_ids[0] for _, e in publisher.queue] == list(range(40, 50))
            assert publisher.dropped == 40
            assert ids(a.received()) == list(range(50))  # the node's own clients missed nothing
    dropping = [r for r in caplog.records if "dropping the oldest" in r.getMessage()]
    assert len(dropping) == 1 and "INVOKE_HOST_MAX_EVENT_RELAY_BACKLOG=10" in dropping[0].getMessage()


async def test_events_dropped_by_a_sender_reach_the_other_nodes_as_one_gap(postgres_url: str) -> None:
    a, b = Node(postgres_url, max_event_relay_backlog=10), Node(postgres_url)
    async with nodes(a, b):
        a.bus.emit(item(0))
        await until(lambda: len(b.received()) == 1, "the first event")
        for n in range(1, 101):  # on the loop with no await between: the sender cannot take any until the end
            a.bus.emit(item(n))
        await until(lambda: len(b.received()) == 11, "the newest ten of the burst")
        assert ids(b.received()) == [0, *range(91, 101)]
        [missed] = b.received(EventsMissedEvent)
        assert (missed.reason, missed.origin, missed.missed) == ("gap", a.relay.origin, 90)
        # The marker comes right before the first event after the gap.
        assert b.clients.events.index(missed) == 1 + b.clients.events.index(b.received()[0])


class Canceled(RecordingSink):
    """A worker's cache sink stand-in: it wants only cancel events."""

    def wants(self, event_name: str) -> bool:
        return event_name == QueueItemsCanceledEvent.event_name


async def test_a_worker_takes_only_what_its_holders_want_and_no_url_means_off(postgres_url: str) -> None:
    worker, api = Node(postgres_url, serves_clients=False), Node(postgres_url)
    holder = Canceled()
    worker.bus.sinks.append(holder)
    worker.relay.attach(RelayInbox(worker.bus, EVENT_TYPES, serves_clients=False, holders=(holder,)))
    off = PostgresEventRelay()
    off.configure({"database_url": "sqlite:///somewhere.db"})
    off_bus = EventBus([off])
    async with nodes(worker, api):
        await off_bus.start()
        assert off.publisher is None and off.listener is None
        assert not off_bus.wants("invocation_progress")  # an unused relay does not make its node build events
        await off_bus.stop()
        assert worker.relay.listener is not None and worker.relay.publisher is not None
        api.bus.emit(QueueClearedEvent.build("q"))  # wanted by no holder: the worker never rebuilds it
        api.bus.emit(item(0))
        worker.bus.emit(item(1))
        await until(lambda: len(api.received()) == 2, "the worker's event")
        await until(lambda: len(worker.received()) == 2, "the API node's cancel at the worker")
        assert ids(api.received()) == [0, 1] and ids(worker.received()) == [1, 0]
        assert [type(e) for e in holder.events] == [QueueItemsCanceledEvent] * 2
        assert not worker.received(QueueClearedEvent) and api.received(QueueClearedEvent)


async def test_a_node_that_listens_but_never_reads_stalls_no_one(postgres_url: str) -> None:
    # A hung API node: its connection LISTENs, and nothing ever reads what the server sends it.
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as hung:
        await hung.execute(f"LISTEN {CHANNEL}")
        a, b = Node(postgres_url), Node(postgres_url)
        async with nodes(a, b):
            for n in range(2000):
                a.bus.emit(item(n, size=100))  # about 1.2 MB in all: more than the hung socket's buffers take
                if n % 100 == 0:
                    await asyncio.sleep(0)
            await until(lambda: len(b.received()) == 2000, "node B to receive everything")
            assert ids(b.received()) == list(range(2000))
            assert a.relay.publisher is not None and a.relay.publisher.dropped == 0


async def test_a_listening_node_that_falls_behind_drops_the_oldest_and_tells_its_clients(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No database: notifications are handed to the listener's queue as its connection would hand them.
    node = Node("sqlite:///none")  # the relay is off; the bus and its clients are what is used
    listener = Listener("postgresql://unused", "me", node.relay_inbox(), max_backlog=5)
    sender = "0123456789abcdef"

    def notify(seq: int) -> None:
        listener._queue(encode(sender, seq, "queue_items_canceled", item(seq).model_dump_json()))

    async with nodes(node):
        deliverer = asyncio.create_task(listener._deliver_all())
        notify(1)
        await until(lambda: len(node.received()) == 1, "the first event")
        deliverer.cancel()
        for seq in range(2, 14):  # nobody hands them on meanwhile
            notify(seq)
        assert listener.dropped == 7 and len(listener._pending) == 5
        deliverer = asyncio.create_task(listener._deliver_all())
        await until(lambda: len(node.received()) == 6, "the newest five")
        deliverer.cancel()
    assert ids(node.received()) == [1, 9, 10, 11, 12, 13]
    [missed] = node.received(EventsMissedEvent)
    assert (missed.reason, missed.origin, missed.missed) == ("gap", sender, 7)
    assert "INVOKE_HOST_MAX_EVENT_RELAY_BACKLOG=5" in caplog.text


class Subscribers(RecordingSink):
    """An API node's clients that want per-node events only while ``subscribed``."""

    subscribed = False

    def wants(self, event_name: str) -> bool:
        return self.subscribed or event_name not in GATED


async def test_a_worker_sends_per_node_events_only_while_another_nodes_clients_want_them(postgres_url: str) -> None:
    worker, api = Node(postgres_url, serves_clients=False), Node(postgres_url)
    clients = Subscribers()
    api.bus.sinks = [api.relay, clients]
    async with nodes(worker, api):
        relay = worker.relay
        assert relay.interest is not None
        await until(lambda: relay.interest is not None and relay.interest.others == frozenset(),
                    "the worker to read that no node wants per-node events")
        assert not relay.wants("invocation_progress") and not relay.wants("invocation_complete")
        assert relay.wants("queue_items_canceled")  # every other event still goes
        # (The worker's bus here also has a recording sink that wants everything; the relay is what is asked.)
        worker.bus.emit(item(7))
        await until(lambda: ids([e for e in clients.events if isinstance(e, QueueItemsCanceledEvent)]) == [7],
                    "an ungated event at the API node")

        clients.subscribed = True
        await until(lambda: relay.wants("invocation_progress"), "the worker to hear of the subscription")
        assert relay.interest.others == GATED
        clients.subscribed = False
        await until(lambda: not relay.wants("invocation_progress"), "the worker to hear it ended")
    # A stopped node leaves the table: its row no longer counts for anyone.
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        cursor = await conn.execute(f"SELECT count(*) FROM {INTEREST_TABLE}")
        assert await cursor.fetchone() == (0,)
