"""The statements that append a batch of node results: rows bound as parameters of multi-row ``INSERT``s.

A batch was one JSON text that SQLite unpacked (``json_each`` with five ``json_extract`` a row): the text cost the
event loop 2-2.5 us a row to encode and SQLite about as much again to parse, on top of the inserts themselves.
Bound as parameters, each row's five values go straight into the statement, bound in C by ``sqlite3`` in the
database thread (one call per statement, not per row, so that thread and the runner do not trade the interpreter
lock per row as ``executemany`` made them). Measured on the 200,002 rows of a 100,000-item iterate, one thread:
Python 0.16 -> 0.10 s, SQLite 0.63 -> 0.32 s.

Each statement takes :data:`ROWS_PER_STATEMENT` rows, the last ones of a batch fewer: their count split into
powers of two, so a connection's statement cache holds at most nine texts of these, whatever the batches' sizes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

from invoke_sdk.session_queue import SessionNodeResult

from invoke_sqlite_storage.session_rows import path_key

__all__ = ["ROWS_PER_STATEMENT", "result_statements"]

ROWS_PER_STATEMENT = 192
"""Rows bound in one statement: 5 parameters each and the item id, 961, under SQLite's lowest limit on a
statement's parameters (999, before SQLite 3.32)."""

RESULT_COLUMNS = "seq, node_id, source_node_id, path, output"


@functools.cache
def _insert(rows: int) -> str:
    # ?1 is the item id, shared by every row; the rest are numbered in order after it.
    values = ",".join(["(?1,?,?,?,?,?)"] * rows)
    # ON CONFLICT DO NOTHING: a row already stored (same seq, or same instance) is never stored twice.
    return f"INSERT INTO session_results (item_id, {RESULT_COLUMNS}) VALUES {values} ON CONFLICT DO NOTHING"


def _sizes(count: int) -> Iterator[int]:
    """How many rows each statement of a batch of ``count`` takes."""
    yield from [ROWS_PER_STATEMENT] * (count // ROWS_PER_STATEMENT)
    rest = count % ROWS_PER_STATEMENT
    bit = 1 << rest.bit_length()
    while bit:
        if rest & bit:
            yield bit
        bit >>= 1


def result_statements(item_id: int, results: Sequence[SessionNodeResult]) -> list[tuple[str, list[Any]]]:
    """(statement, parameters) for each statement that appends ``results``, in ``seq`` order."""
    statements: list[tuple[str, list[Any]]] = []
    start = 0
    for size in _sizes(len(results)):
        params: list[Any] = [item_id]
        extend = params.extend
        for r in results[start:start + size]:
            extend((r[0], r[1], r[2], path_key(r[3]), r[4]))
        statements.append((_insert(size), params))
        start += size
    return statements
