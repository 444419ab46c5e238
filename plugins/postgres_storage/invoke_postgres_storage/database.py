"""The open database: a pool of connections that survives the server going away and coming back.

Every store method hands its work to :meth:`Database.run`. When the connection breaks (the server restarted,
an administrator terminated the backend, the network dropped) or none can be had, the work is tried again on a
fresh connection, waiting a little longer each time (backoff), for at most ``retry_timeout_s``; the loss and the
recovery are logged once per outage, not once per request. If the database stays away longer, the work raises
:class:`~invoke_sdk.storage_base.StorageUnavailableError`: the API answers 503 with its message and a queue worker
tries again later. A statement that fails for any other reason (a constraint, a bad value) is not retried.

Work is retried whole, so every caller's work is one transaction (or one statement) that is safe to run again:
the stores make their writes idempotent (``ON CONFLICT DO NOTHING``, status guards) where a retry could follow a
commit whose reply was lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from invoke_sdk.storage_base import StorageError, StorageUnavailableError, StorageValueError
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from invoke_postgres_storage.url import masked_url

__all__ = ["Connection", "Database", "connection_failure", "describe_error"]

logger = logging.getLogger("invoke_postgres_storage")

T = TypeVar("T")
Connection = psycopg.AsyncConnection[tuple[object, ...]]

_FIRST_DELAY_S = 0.05
_MAX_DELAY_S = 2.0
_RECONNECT_S = 3.0


def describe_error(exc: BaseException, url: str) -> str:
    """The first line of a driver error, with the URL's password taken out should the driver have echoed it."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    password = psycopg.conninfo.conninfo_to_dict(url).get("password") if url else None
    return text.replace(str(password), "***") if password else text


def connection_failure(exc: BaseException, conn: Connection | None) -> bool:
    """Whether ``exc`` means the connection is gone or cannot be had (worth a retry), not that the work is wrong."""
    if isinstance(exc, PoolTimeout | pg_errors.AdminShutdown | pg_errors.CannotConnectNow | pg_errors.CrashShutdown):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    return conn is None or conn.closed or conn.broken


async def _configure(conn: Connection) -> None:
    # Timestamps come back in UTC whatever the server's or the role's TimeZone setting, as SQLite's do.
    await conn.execute("SET TIME ZONE 'UTC'")


class Database:
    """A pool of connections to one PostgreSQL database (autocommit; work that needs a transaction opens one)."""

    def __init__(
        self, url: str, *, max_connections: int = 10, retry_timeout_s: float = 10.0, connect_timeout_s: float = 5.0
    ) -> None:
        self.url = url
        self.shown = masked_url(url)
        self.retry_timeout_s = retry_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._max_connections = max_connections
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._outage_since: float | None = None
        self._writes: set[asyncio.Task[object]] = set()

    async def connect(self) -> Connection:
        """One connection of its own (the migrator's), or a :class:`StorageError` saying in one line why not."""
        try:
            return await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=max(1, round(self.connect_timeout_s))
            )
        except psycopg.Error as exc:
            raise StorageError(
                f"cannot connect to the database at {self.shown}: {describe_error(exc, self.url)} "
                "(check database_url / INVOKE_HOST_DATABASE_URL and that the server is running)"
            ) from None

    async def open(self) -> None:
        # No check before handing a connection out (a round trip per operation): one that died while idle fails
        # its work, the pool drops it, and run() tries again on another.
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=self._max_connections,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(self.connect_timeout_s))},
            configure=_configure,
            open=False,
            name="invoke-host",
            # The pool retries a failed connection at 1, 2, 4, ... s until this runs out, then the next request
            # starts a new attempt at once: kept short, so a server that is back is found within seconds.
            reconnect_timeout=_RECONNECT_S,
        )
        try:
            await pool.open(wait=True, timeout=self.connect_timeout_s)
        except PoolTimeout as exc:
            await pool.close()
            raise StorageError(f"cannot open connections to the database at {self.shown}: {exc}") from None
        self._pool = pool

    async def close(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def run(self, work: Callable[[Connection], Awaitable[T]], *, transaction: bool = False) -> T:
        """Run ``work`` on a pooled connection (in one transaction if asked), again on a new one if the old broke.

        Raises :class:`StorageUnavailableError` when no attempt succeeded within ``retry_timeout_s``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_timeout_s
        delay = _FIRST_DELAY_S
        while True:
            pool = self._pool
            if pool is None:
                raise StorageError("the database is not open")
            conn: Connection | None = None
            try:
                async with pool.connection(timeout=max(0.05, deadline - loop.time())) as conn:
                    if transaction:
                        async with conn.transaction():
                            result = await work(conn)
                    else:
                        result = await work(conn)
            except psycopg.DataError as exc:
                # A value PostgreSQL cannot hold (a NUL character in text or in jsonb, a number out of range): the
                # caller's input, not a failure of the database.
                raise StorageValueError(
                    f"the database cannot store or compare a value of this request: {describe_error(exc, self.url)}"
                ) from None
            except (psycopg.Error, PoolTimeout) as exc:
                if not connection_failure(exc, conn):
                    raise
                reason = describe_error(exc, self.url)
                if self._outage_since is None:
                    self._outage_since = loop.time()
                    logger.warning(
                        "Lost the connection to the database at %s (%s); reconnecting with backoff for up to %.0f s "
                        "(database_retry_timeout_s)", self.shown, reason, self.retry_timeout_s,
                    )
                left = deadline - loop.time()
                if left <= 0:
                    raise StorageUnavailableError(
                        f"the database at {self.shown} cannot be reached ({reason}); reconnecting for "
                        f"{self.retry_timeout_s:g} s (database_retry_timeout_s) did not succeed: try again shortly"
                    ) from None
                logger.debug("Database unreachable (%s); trying again in %.2f s", reason, min(delay, left))
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, _MAX_DELAY_S)
                continue
            if self._outage_since is not None:
                logger.warning("Reconnected to the database at %s after %.1f s", self.shown,
                               loop.time() - self._outage_since)
                self._outage_since = None
            return result

    async def write(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """:meth:`run` in one transaction, as its own task: a caller that is cancelled (a client that hung up)
        does not leave it half done; it still commits or rolls back."""
        task: asyncio.Task[T] = asyncio.get_running_loop().create_task(self.run(work, transaction=True))
        self._writes.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._writes.discard)  # type: ignore[arg-type]
        return await asyncio.shield(task)
