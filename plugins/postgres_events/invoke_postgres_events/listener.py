"""Receiving: other nodes' events come in on a LISTEN connection and go to this node's sinks, in order.

Notifications arrive in commit order, and each node sends its events in order (see
:mod:`~invoke_postgres_events.publisher`), so they are handed on in the order they come. One task takes them off the
connection into a bounded queue (``max_event_relay_backlog``; when full the oldest go, and the gap is reported as
below); another hands on everything waiting, up to :data:`BATCH` notifications at a time, reading the outbox rows
among them in one query, so a stream of large events costs a round trip per batch, not per event.

Each node's sequence numbers are followed: one seen before (a batch sent again after a failed commit) is skipped,
one that skips ahead means events were lost on the way, and the clients get an
:class:`~invoke_postgres_events.missed_events.EventsMissedEvent`. This node's own notifications are
skipped: its clients had those events from its own bus.

When the connection drops (the server restarted, a network cut: TCP keepalives notice a silent one) it is made
again with backoff, and the clients get a ``reconnected`` marker: what was sent meanwhile is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

import psycopg
from invoke_sdk.events import BaseEvent, EventInbox
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import ValidationError

from invoke_postgres_events import outbox, wire
from invoke_postgres_events.backoff import Backoff
from invoke_postgres_events.missed_events import EventsMissedEvent

__all__ = ["Listener"]

logger = logging.getLogger("invoke_host.events.postgres")

# A connection that goes silent (no FIN: a cut cable, a dead host) is noticed within about 10 + 3 * 5 seconds.
_KEEPALIVE: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
BATCH = 256
"""The most notifications handed on together (their outbox rows read in one query)."""
_MAX_ORIGINS = 10_000
"""Nodes whose last sequence number is remembered; each node process is one, so this is many restarts' worth."""


class Listener:
    """One node's receiver of the other nodes' events."""

    def __init__(self, url: str, origin: str, inbox: EventInbox, *, max_backlog: int = 10_000) -> None:
        self.url = url
        self.origin = origin
        self.inbox = inbox
        self.max_backlog = max_backlog
        self.listening = asyncio.Event()
        self.backend_pid: int | None = None
        """The server process of the LISTEN connection (what ``pg_terminate_backend`` takes)."""
        self.received = 0
        self.delivered = 0
        self.dropped = 0
        self._pending: deque[str | None] = deque()
        """Payloads taken off the connection, not yet handed on; None: the connection was made again."""
        self._wake = asyncio.Event()
        self._last: dict[str, int] = {}
        self._reader: AsyncConnection[TupleRow] | None = None
        self._warned: set[str] = set()

    async def run(self) -> None:
        """Listen until cancelled, connecting again with backoff whenever the connection fails."""
        deliverer = asyncio.create_task(self._deliver_all(), name="postgres-events-deliverer")
        backoff = Backoff()
        connected_before = False
        try:
            while True:
                try:
                    async with await AsyncConnection.connect(self.url, autocommit=True, **_KEEPALIVE) as conn:
                        await conn.execute(f"LISTEN {wire.CHANNEL}")
                        self.backend_pid = conn.info.backend_pid
                        if connected_before:
                            logger.warning("Listening to other nodes' events again; what they sent meanwhile is lost")
                            self._queue(None)
                        connected_before = True
                        backoff.reset()
                        self.listening.set()
                        async for note in conn.notifies():
                            self._queue(note.payload)
                except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                    self.listening.clear()
                    delay = backoff.next()
                    logger.warning("Lost the connection that receives other nodes' events (%s); connecting again in "
                                   "%.1f s", " ".join(str(exc).split()), delay)
                    await asyncio.sleep(delay)
        finally:
            self.listening.clear()
            deliverer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await deliverer
            await self._close_reader()

    def _queue(self, payload: str | None) -> None:
        self.received += payload is not None
        if len(self._pending) >= self.max_backlog:
            self._pending.popleft()
            self.dropped += 1
            self._warn_once("backlog", "This node hands other nodes' events on more slowly than they come: over "
                            "max_event_relay_backlog (INVOKE_HOST_MAX_EVENT_RELAY_BACKLOG=%d) are waiting; dropping "
                            "the oldest, and its clients are told", self.max_backlog)
        self._pending.append(payload)
        self._wake.set()

    async def _deliver_all(self) -> None:
        pending = self._pending
        while True:
            if not pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [pending.popleft() for _ in range(min(BATCH, len(pending)))]
            try:
                await self._deliver(batch)
            except Exception:  # a bug here must not end delivery for good: it is logged
                logger.exception("Handing on %d events of other nodes failed; they are lost", len(batch))

    async def _deliver(self, payloads: list[str | None]) -> None:
        """Hand on a batch of notifications in order: markers, and events read inline or from the outbox."""
        todo: list[BaseEvent | tuple[type[BaseEvent], wire.Header, str | None]] = []
        for payload in payloads:
            if payload is None:
                todo.append(EventsMissedEvent(reason="reconnected"))
                continue
            try:
                header, data = wire.parse(payload)
            except wire.WireError as exc:
                self._warn_once("wire", "Skipped a notification on %s that is not an event: %s", wire.CHANNEL, exc)
                continue
            if header.origin == self.origin:
                continue
            last = self._last.get(header.origin)
            if last is not None and header.seq <= last:
                continue  # sent again after a commit whose answer was lost: handed on already
            self._remember(header.origin, header.seq)
            if last is not None and header.seq > last + 1:
                todo.append(EventsMissedEvent(reason="gap", origin=header.origin, missed=header.seq - last - 1))
            if not self.inbox.wants(header.name):
                continue
            event_type = self.inbox.event_types.get(header.name)
            if event_type is None:
                self._warn_once(header.name, "Skipped %r events from another node: no plugin here registers that "
                                "event (install the same plugins on every node)", header.name)
                continue
            todo.append((event_type, header, data))
        wanted = [entry[1].outbox_id for entry in todo if isinstance(entry, tuple) and entry[1].outbox_id is not None]
        rows = await self._outbox_rows(wanted) if wanted else {}
        for entry in todo:
            if isinstance(entry, BaseEvent):
                self.inbox.emit_remote(entry)
                continue
            event_type, header, data = entry
            if header.outbox_id is not None:
                data = rows.get(header.outbox_id)
                if data is None:  # pruned before this node read it, or the outbox could not be read
                    self.inbox.emit_remote(EventsMissedEvent(reason="gap", origin=header.origin, missed=1))
                    continue
            assert data is not None
            event = self._rebuild(event_type, header, data)
            if event is not None:
                self.delivered += 1
                self.inbox.emit_remote(event)

    def _rebuild(self, event_type: type[BaseEvent], header: wire.Header, data: str) -> BaseEvent | None:
        try:
            return event_type.model_validate_json(data)
        except ValidationError as exc:
            self._warn_once(f"invalid:{header.name}", "Skipped %r events from another node that do not validate "
                            "here (a different version of the plugin?): %s", header.name, exc)
            return None

    async def _outbox_rows(self, row_ids: list[int]) -> dict[int, str]:
        for attempt in (1, 2):
            try:
                if self._reader is None or self._reader.closed:
                    self._reader = await AsyncConnection.connect(self.url, autocommit=True, **_KEEPALIVE)
                return await outbox.fetch(self._reader, row_ids)
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                await self._close_reader()
                if attempt == 2:
                    logger.warning("Cannot read %d large events of other nodes from the outbox: %s", len(row_ids), exc)
        return {}

    def _remember(self, origin: str, seq: int) -> None:
        # Kept in the order last heard from, so that a full map forgets the node silent longest.
        if self._last.pop(origin, None) is None and len(self._last) >= _MAX_ORIGINS:
            self._last.pop(next(iter(self._last)))
        self._last[origin] = seq

    async def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                await reader.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail; it is gone either way
                pass

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)
