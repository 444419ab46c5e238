"""Sending: this node's events go to PostgreSQL from a bounded queue, in a task of their own.

:meth:`Publisher.offer` is an append (the bus calls it on the loop for each event): it never waits on the database.
The task takes everything waiting, up to :data:`BATCH` events, and sends it as one transaction of ``pg_notify``
calls in one pipelined round trip; PostgreSQL delivers a transaction's notifications in the order they were sent,
and transactions in commit order, so listeners see this node's events in the order they were emitted. An event over
NOTIFY's limit is written to the outbox table in the same transaction and its notification names the row.

When the database is slow or gone the queue fills up to ``max_event_relay_backlog`` events; then the oldest are
dropped (logged once per episode, and the count when it ends). Their sequence numbers are skipped, so listening
nodes tell their clients (:class:`~invoke_postgres_events.missed_events.EventsMissedEvent`). A batch whose
transaction failed goes back to the front of the queue and is sent again on a new connection: a listener drops a
sequence number it already had, so a batch whose commit did go through is not delivered twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

import psycopg
from invoke_sdk.events import BaseEvent
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from invoke_postgres_events import outbox, wire
from invoke_postgres_events.backoff import Backoff

__all__ = ["BATCH", "Publisher"]

logger = logging.getLogger("invoke_host.events.postgres")

BATCH = 256
"""The most events sent in one transaction."""
_PRUNE_EVERY_S = 10.0


class Publisher:
    """One node's sender: a bounded queue of ``(sequence number, event)`` and the task that empties it."""

    def __init__(
        self,
        url: str,
        origin: str,
        *,
        max_backlog: int = 10_000,
        max_event_bytes: int = 16 * 1024 * 1024,
        outbox_keep_s: float = 300.0,
        max_outbox_rows: int = 10_000,
    ) -> None:
        self.url = url
        self.origin = origin
        self.max_backlog = max_backlog
        self.max_event_bytes = max_event_bytes
        self.outbox_keep_s = outbox_keep_s
        self.max_outbox_rows = max_outbox_rows
        self.queue: deque[tuple[int, BaseEvent]] = deque()
        self.sent = 0
        self.dropped = 0
        """Events dropped from a full queue since this publisher was made."""
        self.too_large = 0
        self.connected = asyncio.Event()
        self._seq = 0
        self._dropping_since: int | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._outbox_written = 0
        self._last_prune = time.monotonic()

    def offer(self, event: BaseEvent) -> None:
        """Queue ``event`` with the next sequence number; when the queue is full, the oldest event goes."""
        self._seq += 1
        if len(self.queue) >= self.max_backlog:
            self.queue.popleft()
            self.dropped += 1
            if self._dropping_since is None:
                self._dropping_since = self.dropped - 1
                logger.warning(
                    "The database takes events more slowly than this node makes them: %d are waiting "
                    "(max_event_relay_backlog, INVOKE_HOST_MAX_EVENT_RELAY_BACKLOG=%d); dropping the oldest, so "
                    "other nodes' clients miss them", len(self.queue) + 1, self.max_backlog,
                )
        self.queue.append((self._seq, event))
        self._idle.clear()
        self._wake.set()

    async def drained(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until everything queued was sent; whether it was."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Connect, send what comes, reconnect with backoff when the connection fails; until cancelled."""
        backoff = Backoff()
        while True:
            try:
                async with await AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await outbox.create_table(conn)
                    if backoff.failures:
                        logger.info("Sending events to the database again")
                    backoff.reset()
                    self.connected.set()
                    await self._send_all(conn)
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                self.connected.clear()
                delay = backoff.next()
                if backoff.failures == 1:
                    logger.warning("Cannot send events to the database (%s); retrying every %.1f s at most",
                                   " ".join(str(exc).split()), backoff.maximum)
                await asyncio.sleep(delay)

    async def _send_all(self, conn: AsyncConnection[TupleRow]) -> None:
        while True:
            if not self.queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self.queue.popleft() for _ in range(min(BATCH, len(self.queue)))]
            try:
                await self._send(conn, batch)
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError, asyncio.CancelledError):
                self._put_back(batch)
                raise
            except psycopg.Error:
                # The database refused these events (not the connection): sending them again would fail again.
                logger.exception("The database refused %d events; other nodes' clients do not get them", len(batch))
                self.dropped += len(batch)
                continue
            self.sent += len(batch)
            if self._dropping_since is not None and len(self.queue) < self.max_backlog // 2:
                logger.warning("The database keeps up with events again; %d were dropped",
                               self.dropped - self._dropping_since)
                self._dropping_since = None
            await self._maybe_prune(conn)

    def _put_back(self, batch: list[tuple[int, BaseEvent]]) -> None:
        # Newer events may have come meanwhile; the queue's bound still holds, at the cost of the oldest.
        room = self.max_backlog - len(self.queue)
        kept = batch[len(batch) - room:] if room < len(batch) else batch
        self.dropped += len(batch) - len(kept)
        self.queue.extendleft(reversed(kept))

    async def _send(self, conn: AsyncConnection[TupleRow], batch: list[tuple[int, BaseEvent]]) -> None:
        if len(batch) == 1:
            # The common case at a steady rate: one statement in autocommit (its own transaction), without a
            # pipeline's bookkeeping.
            await self._send_one(conn, *batch[0])
            return
        # Pipelined: every statement goes out without waiting for the one before; the commit is the one wait.
        async with conn.pipeline(), conn.transaction():
            for seq, event in batch:
                await self._send_one(conn, seq, event)

    async def _send_one(self, conn: AsyncConnection[TupleRow], seq: int, event: BaseEvent) -> None:
        data = event.model_dump_json()
        payload = wire.encode(self.origin, seq, event.event_name, data)
        if len(payload) <= wire.NOTIFY_MAX_BYTES // 4 or len(payload.encode()) <= wire.NOTIFY_MAX_BYTES:
            await conn.execute("SELECT pg_notify(%s, %s)", (wire.CHANNEL, payload))
            return
        size = len(data.encode())
        if size > self.max_event_bytes:
            self.too_large += 1
            logger.warning(
                "Event %s of %d bytes is over max_event_relay_bytes (INVOKE_HOST_MAX_EVENT_RELAY_BYTES=%d): other "
                "nodes' clients do not get it", event.event_name, size, self.max_event_bytes,
            )
            return
        header = wire.outbox_header(self.origin, seq, event.event_name)
        await outbox.insert_and_notify(conn, wire.CHANNEL, header, data)
        self._outbox_written += 1

    async def _maybe_prune(self, conn: AsyncConnection[TupleRow]) -> None:
        if not self._outbox_written:
            return
        now = time.monotonic()
        due = now - self._last_prune >= min(self.outbox_keep_s, _PRUNE_EVERY_S)
        if not due and self._outbox_written < max(1, self.max_outbox_rows // 10):
            return
        self._outbox_written = 0
        self._last_prune = now
        await outbox.prune(conn, self.outbox_keep_s, self.max_outbox_rows)
