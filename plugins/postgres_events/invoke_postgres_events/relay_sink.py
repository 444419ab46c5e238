"""Events everywhere: the sink that joins a node's event bus to every other node's, through PostgreSQL.

On every node whose ``database_url`` is a ``postgresql://`` URL, :class:`PostgresEventRelay` takes every event the
node emits and sends it on (:mod:`~invoke_postgres_events.publisher`: a bounded queue, a task of its own, so a slow
database never stalls the node); it also receives the other nodes' events (:mod:`~invoke_postgres_events.listener`)
and hands those its :class:`~invoke_sdk.events.EventInbox` wants to the node's bus, which delivers them to every sink
but the relays, never back to the database. On nodes that serve clients (API and all-in-one nodes) that is what the
websocket clients want; on a worker only what its caches must hear of (an image deleted, a model changed elsewhere).
With any other URL, or none, it does nothing and costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from invoke_sdk.events import BaseEvent, EventInbox

if TYPE_CHECKING:
    from invoke_postgres_events.interest import InterestBoard
    from invoke_postgres_events.listener import Listener
    from invoke_postgres_events.publisher import Publisher

__all__ = ["PostgresEventRelay", "is_postgres_url"]

logger = logging.getLogger("invoke_host.events.postgres")

_START_WAIT_S = 5.0
"""At start, how long to wait for the first connections, so that the first events are not missed."""
_STOP_FLUSH_S = 2.0
"""At stop, how long events still queued may take to go out."""


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("%s stopped: events between nodes no longer flow", task.get_name(), exc_info=task.exception())


def is_postgres_url(url: object) -> bool:
    return isinstance(url, str) and url.startswith(("postgresql://", "postgres://"))


class PostgresEventRelay:
    """This node's events out to PostgreSQL, and (where it serves clients) the other nodes' events in."""

    name = "postgres_events"

    def __init__(self, origin: str | None = None) -> None:
        self.origin = origin or uuid.uuid4().hex[:16]
        """This node's id in every notification it sends: how it knows its own when they come back."""
        self.url: str | None = None
        self.settings: dict[str, Any] = {}
        self.inbox: EventInbox | None = None
        self.publisher: Publisher | None = None
        self.listener: Listener | None = None
        self.interest: InterestBoard | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Take ``database_url`` and the ``max_event_relay_*`` / ``event_relay_outbox_keep_s`` limits."""
        url = settings.get("database_url")
        self.url = url if is_postgres_url(url) else None
        self.settings = {key: settings[key] for key in (
            "max_event_relay_backlog", "max_event_relay_bytes", "max_event_relay_outbox_rows",
            "event_relay_outbox_keep_s") if key in settings}

    def attach(self, inbox: EventInbox) -> None:
        self.inbox = inbox

    def wants(self, event_name: str) -> bool:
        """While it sends: every event but the per-node ones, and those while another node wants them
        (:mod:`~invoke_postgres_events.interest`); none when it is off."""
        interest = self.interest
        return self.publisher is not None and (interest is None or interest.wanted(event_name))

    async def start(self) -> None:
        if self.url is None:
            return
        # psycopg costs about 0.3 s to import: only a node that has a PostgreSQL URL pays it.
        from invoke_postgres_events.interest import InterestBoard
        from invoke_postgres_events.listener import Listener
        from invoke_postgres_events.publisher import Publisher

        s = self.settings
        self.publisher = Publisher(
            self.url, self.origin,
            max_backlog=int(s.get("max_event_relay_backlog", 10_000)),
            max_event_bytes=int(s.get("max_event_relay_bytes", 16 * 1024 * 1024)),
            outbox_keep_s=float(s.get("event_relay_outbox_keep_s", 300.0)),
            max_outbox_rows=int(s.get("max_event_relay_outbox_rows", 10_000)),
        )
        waits = [self.publisher.connected.wait()]
        self._run(self.publisher.run(), "postgres-events-publisher")
        if self.inbox is not None:
            self.listener = Listener(self.url, self.origin, self.inbox, max_backlog=self.publisher.max_backlog)
            waits.append(self.listener.listening.wait())
            self._run(self.listener.run(), "postgres-events-listener")
        inbox = self.inbox
        self.interest = InterestBoard(self.url, self.origin, inbox.wants if inbox is not None else lambda name: False)
        waits.append(self.interest.ready.wait())
        self._run(self.interest.run(), "postgres-events-interest")
        try:
            await asyncio.wait_for(asyncio.gather(*waits), _START_WAIT_S)
        except TimeoutError:
            logger.warning("The database did not answer within %.0f s; events between nodes start when it does",
                           _START_WAIT_S)

    def _run(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(_log_failure)
        self._tasks.append(task)

    async def stop(self) -> None:
        if self.publisher is not None and self.publisher.connected.is_set():
            await self.publisher.drained(_STOP_FLUSH_S)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.interest is not None:
            await self.interest.leave()
        self.publisher = None
        self.listener = None
        self.interest = None

    def deliver(self, event: BaseEvent) -> None:
        if self.publisher is not None and (self.interest is None or self.interest.wanted(event.event_name)):
            self.publisher.offer(event)
