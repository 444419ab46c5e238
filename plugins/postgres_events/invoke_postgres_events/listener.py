"""Receiving: other nodes' events come in on a LISTEN connection and go to this node's sinks, in order.

Notifications arrive in commit order, and each node sends its events in order (see
:mod:`~invoke_postgres_events.publisher`), so they are handed on one at a time as they come: an event in the outbox
is read before the next notification is looked at. Each node's sequence numbers are followed: one seen before (a
batch sent again after a failed commit) is skipped, one that skips ahead means events were lost on the way, and the
clients get an :class:`~invoke_postgres_events.missed_events.EventsMissedEvent`. This node's own notifications are
skipped: its clients had those events from its own bus.

When the connection drops (the server restarted, a network cut: TCP keepalives notice a silent one) it is made
again with backoff, and the clients get a ``reconnected`` marker: what was sent meanwhile is gone.
"""

from __future__ import annotations

import asyncio
import logging
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
_MAX_ORIGINS = 10_000
"""Nodes whose last sequence number is remembered; each node process is one, so this is many restarts' worth."""


class Listener:
    """One node's receiver of the other nodes' events."""

    def __init__(self, url: str, origin: str, inbox: EventInbox) -> None:
        self.url = url
        self.origin = origin
        self.inbox = inbox
        self.listening = asyncio.Event()
        self.backend_pid: int | None = None
        """The server process of the LISTEN connection (what ``pg_terminate_backend`` takes)."""
        self.received = 0
        self.delivered = 0
        self._last: dict[str, int] = {}
        self._reader: AsyncConnection[TupleRow] | None = None
        self._warned: set[str] = set()

    async def run(self) -> None:
        """Listen until cancelled, connecting again with backoff whenever the connection fails."""
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
                            self.inbox.emit_remote(EventsMissedEvent(reason="reconnected"))
                        connected_before = True
                        backoff.reset()
                        self.listening.set()
                        async for note in conn.notifies():
                            await self._take(note.payload)
                except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                    self.listening.clear()
                    delay = backoff.next()
                    logger.warning("Lost the connection that receives other nodes' events (%s); connecting again in "
                                   "%.1f s", " ".join(str(exc).split()), delay)
                    await self._close_reader()
                    await asyncio.sleep(delay)
        finally:
            self.listening.clear()
            await self._close_reader()

    async def _take(self, payload: str) -> None:
        self.received += 1
        try:
            header, data = wire.parse(payload)
        except wire.WireError as exc:
            self._warn_once("wire", "Skipped a notification on %s that is not an event: %s", wire.CHANNEL, exc)
            return
        if header.origin == self.origin:
            return
        last = self._last.get(header.origin)
        if last is not None and header.seq <= last:
            return  # sent again after a commit whose answer was lost: delivered already
        self._remember(header.origin, header.seq)
        if last is not None and header.seq > last + 1:
            self.inbox.emit_remote(EventsMissedEvent(reason="gap", origin=header.origin, missed=header.seq - last - 1))
        if not self.inbox.wants(header.name):
            return
        event_type = self.inbox.event_types.get(header.name)
        if event_type is None:
            self._warn_once(header.name, "Skipped %r events from another node: no plugin here registers that event "
                            "(install the same plugins on every node)", header.name)
            return
        if data is None:
            data = await self._outbox_data(header)
            if data is None:
                self.inbox.emit_remote(EventsMissedEvent(reason="gap", origin=header.origin, missed=1))
                return
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

    async def _outbox_data(self, header: wire.Header) -> str | None:
        assert header.outbox_id is not None
        for attempt in (1, 2):
            try:
                if self._reader is None or self._reader.closed:
                    self._reader = await AsyncConnection.connect(self.url, autocommit=True, **_KEEPALIVE)
                return await outbox.fetch(self._reader, header.outbox_id)
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                await self._close_reader()
                if attempt == 2:
                    logger.warning("Cannot read a large event of another node from the outbox: %s", exc)
        return None

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
