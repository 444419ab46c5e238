"""Who wants the per-node events: each node says so in a small table, so a worker sends them only while some
node's clients want them.

The per-node events (:data:`GATED`: a node started, progressed, completed) are nearly all of what a worker emits,
two or more per node it runs; building each, serialising it and sending it through NOTIFY cost a worker more CPU
than running a graph of small nodes (bench/scaleout.py, docs/benchmarks.md). Every other event always goes.

Each node keeps one row in :data:`TABLE`: which of :data:`GATED` its own sinks want now (its websocket clients
subscribed to a queue, a DEBUG log), written when that changes and renewed well before it expires (a node that
died stops counting after :data:`TTL_S`). A change is announced on :data:`CHANNEL`; every node reads the other
rows on each announcement and every :data:`REFRESH_S`, and sends a gated event only while another node wants it.
Until a node has read the table once it sends everything. A client that subscribes starts getting the per-node
events of other nodes' items within about :data:`POLL_S` plus a round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from invoke_postgres_events.backoff import Backoff

__all__ = ["CHANNEL", "GATED", "TABLE", "InterestBoard"]

logger = logging.getLogger("invoke_host.events.postgres")

TABLE = "invoke_event_interest"
CHANNEL = "invoke_host_event_interest"
GATED = frozenset({"invocation_started", "invocation_progress", "invocation_complete"})
"""The per-node events, sent only while a node wants them."""
POLL_S = 0.25
"""How often a node looks at what its own sinks want (a few ``wants`` calls: cheap)."""
TTL_S = 30.0
"""How long a node's row counts without being renewed."""
REFRESH_S = 5.0
"""How often a node renews its row and reads the others' without an announcement."""
_SCHEMA_LOCK = 0x1E7E_0B0D


class InterestBoard:
    """This node's row in the interest table, and what the other nodes want (:meth:`wanted`)."""

    def __init__(self, url: str, origin: str, own_wants: Callable[[str], bool]) -> None:
        self.url = url
        self.origin = origin
        self.own_wants = own_wants
        self.others: frozenset[str] | None = None
        """The gated events another node wants; None until the table was read (then everything is sent)."""
        self.ready = asyncio.Event()
        self._mine: frozenset[str] | None = None

    def wanted(self, event_name: str) -> bool:
        """Whether an event of this name should be sent to the other nodes now."""
        others = self.others
        return event_name not in GATED or others is None or event_name in others

    def _own(self) -> frozenset[str]:
        return frozenset(name for name in GATED if self.own_wants(name))

    async def run(self) -> None:
        """Keep this node's row and the others' view current until cancelled; reconnect with backoff."""
        backoff = Backoff()
        while True:
            try:
                async with await AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await _create_table(conn)
                    await conn.execute(f"LISTEN {CHANNEL}")
                    backoff.reset()
                    await self._serve(conn)
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                self.others = None  # unknown again: send everything until the table can be read
                self._mine = None
                delay = backoff.next()
                logger.warning("Cannot read which nodes want per-node events (%s); sending them all, retrying in "
                               "%.1f s", " ".join(str(exc).split()), delay)
                await asyncio.sleep(delay)

    async def _serve(self, conn: AsyncConnection[TupleRow]) -> None:
        loop = asyncio.get_running_loop()
        renewed = 0.0
        while True:
            mine = self._own()
            if mine != self._mine or loop.time() - renewed >= REFRESH_S:
                announce = mine != self._mine
                await conn.execute(
                    f"INSERT INTO {TABLE} (origin, names, expires_at) VALUES (%s, %s, now() + make_interval(secs => "
                    "%s)) ON CONFLICT (origin) DO UPDATE SET names = excluded.names, expires_at = excluded.expires_at",
                    (self.origin, sorted(mine), TTL_S),
                )
                if announce:
                    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self.origin))
                self._mine = mine
                renewed = loop.time()
                await self._read(conn)
            # Announcements by other nodes: read the table again at once.
            heard = False
            async for note in conn.notifies(timeout=POLL_S):
                heard = heard or note.payload != self.origin
            if heard:
                await self._read(conn)

    async def _read(self, conn: AsyncConnection[TupleRow]) -> None:
        cursor = await conn.execute(
            f"SELECT names FROM {TABLE} WHERE origin <> %s AND expires_at > now()", (self.origin,)
        )
        self.others = frozenset(name for row in await cursor.fetchall() for name in row[0])
        self.ready.set()

    async def leave(self) -> None:
        """Remove this node's row (a node stopping wants nothing more); best effort."""
        try:
            async with await AsyncConnection.connect(self.url, autocommit=True, connect_timeout=2) as conn:
                await conn.execute(f"DELETE FROM {TABLE} WHERE origin = %s", (self.origin,))
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self.origin))
        except (psycopg.Error, OSError):
            pass  # its row expires by itself


async def _create_table(conn: AsyncConnection[TupleRow]) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (origin text PRIMARY KEY, names text[] NOT NULL,"
            " expires_at timestamptz NOT NULL)"
        )
