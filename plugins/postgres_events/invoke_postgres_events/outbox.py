"""The outbox table: events too large for a NOTIFY payload wait here for the listening nodes, for a bounded time.

A row is written in the same transaction as the notification that names it, so a listener that gets the
notification always finds the row. Rows are pruned by the sending nodes: older than ``event_relay_outbox_keep_s``,
or beyond the newest ``max_event_relay_outbox_rows``. A listener that comes to a pruned row (it was disconnected for
longer than that) delivers a missed-events marker instead.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

__all__ = ["TABLE", "create_table", "fetch", "insert_and_notify", "prune"]

TABLE = "invoke_event_outbox"

# Any constant both sides agree on: serialises CREATE TABLE IF NOT EXISTS between nodes starting together
# (two concurrent ones can both fail on the catalog's unique index).
_SCHEMA_LOCK = 0x1E7E_0B0C


async def create_table(conn: AsyncConnection[TupleRow]) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ("
            " id bigserial PRIMARY KEY,"
            " created_at timestamptz NOT NULL DEFAULT now(),"
            " data text NOT NULL)"
        )


async def insert_and_notify(conn: AsyncConnection[TupleRow], channel: str, header: tuple[str, str], data: str) -> None:
    """Store one event's JSON and send the notification naming its row, in one statement (so a pipeline need not
    wait for the row id); ``header`` is the notification's text before and after the id. The notification goes out
    when the transaction commits (in autocommit, this statement's own), when the row can be read."""
    before, after = header
    await conn.execute(
        f"WITH row AS (INSERT INTO {TABLE} (data) VALUES (%s) RETURNING id) "
        "SELECT pg_notify(%s, %s || row.id || %s) FROM row",
        (data, channel, before, after),
    )


async def fetch(conn: AsyncConnection[TupleRow], row_ids: list[int]) -> dict[int, str]:
    """The event JSON of rows by id, in one query; a pruned row is missing."""
    cursor = await conn.execute(f"SELECT id, data FROM {TABLE} WHERE id = ANY(%s)", (row_ids,))
    return {int(row[0]): str(row[1]) for row in await cursor.fetchall()}


async def prune(conn: AsyncConnection[TupleRow], keep_s: float, max_rows: int) -> int:
    """Delete rows older than ``keep_s`` seconds or beyond the newest ``max_rows``; how many went."""
    cursor = await conn.execute(
        f"DELETE FROM {TABLE} WHERE created_at < now() - make_interval(secs => %s)"
        f" OR id <= (SELECT max(id) FROM {TABLE}) - %s",
        (keep_s, max_rows),
    )
    return cursor.rowcount
