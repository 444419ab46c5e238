"""Session progress as rows in a real database (every backend): appended, paged by keyset, never duplicated."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from invoke_sdk.session_queue import SessionNodeError, SessionNodeResult
from invoke_sdk.storage import QueueItemNotFoundError
from invoke_sqlite_storage import SqliteBackend
from invoke_sqlite_storage.session_rows import path_from_key, path_key

from tests.storage.conftest import make_batch
from tests.storage_backends import AnyBackend


def row(seq: int, node_id: str, path: tuple[int, ...] = (), value: int = 0) -> SessionNodeResult:
    return SessionNodeResult(seq, node_id, node_id.split("#")[0], path, json.dumps({"type": "t", "value": value}))


async def _running_item(backend: AnyBackend) -> int:
    (item_id,) = (await backend.session_queue.enqueue(*make_batch(n=1), prepend=False)).item_ids
    assert (await backend.session_queue.claim_next()) is not None
    return item_id


def test_path_keys_sort_as_the_paths_do() -> None:
    paths = [(0,), (1,), (9,), (10,), (15,), (16,), (255,), (256,), (4095,), (4096,), (10**9,), (2**59,)]
    keys = [path_key(p) for p in paths]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    nested = [(0, 0), (0, 10), (0, 300), (1, 0), (2, 5), (10, 0)]
    assert [path_key(p) for p in nested] == sorted(path_key(p) for p in nested)
    assert [path_from_key(path_key(p)) for p in paths + nested] == paths + nested
    assert path_key(()) == "" and path_from_key("") == ()
    with pytest.raises(ValueError, match="out of range"):
        path_key((-1,))


async def test_results_are_appended_in_batches_and_read_in_seq_or_iteration_order(backend: AnyBackend) -> None:
    store = backend.session_queue
    item_id = await _running_item(backend)
    # Execution order differs from iteration order: add#2 (path 0) ran after add#0 (path 2).
    await store.append_progress(item_id, [row(0, "range#0"), row(1, "add#0", (2,), 12)])
    await store.append_progress(item_id, [row(2, "add#1", (10,), 20), row(3, "add#2", (0,), 10)])
    every = await store.list_results(item_id, limit=100)
    assert [(r.seq, r.node_id) for r in every] == [(0, "range#0"), (1, "add#0"), (2, "add#1"), (3, "add#2")]
    assert every[1] == row(1, "add#0", (2,), 12)  # stored and given back exactly
    adds = await store.list_results(item_id, source_node_id="add", limit=100)
    assert [(r.node_id, r.path) for r in adds] == [("add#2", (0,)), ("add#0", (2,)), ("add#1", (10,))]
    # Keyset pages: each continues after the row (by its seq) the previous page ended with.
    first = await store.list_results(item_id, source_node_id="add", limit=2)
    assert [r.node_id for r in first] == ["add#2", "add#0"]
    rest = await store.list_results(item_id, source_node_id="add", after_seq=first[-1].seq, limit=2)
    assert [r.node_id for r in rest] == ["add#1"]
    after = await store.list_results(item_id, after_seq=1, limit=2)
    assert [r.seq for r in after] == [2, 3]
    assert await store.result_counts(item_id) == {"range": 1, "add": 3}
    assert await store.list_results(item_id, source_node_id="nope", limit=10) == []
    assert await store.list_results(10**6, limit=10) == [] and await store.result_counts(10**6) == {}
    assert await store.list_results(2**70, limit=10) == []


async def test_ids_and_outputs_with_awkward_characters_come_back_exactly(backend: AnyBackend) -> None:
    store = backend.session_queue
    item_id = await _running_item(backend)
    # Quotes, backslashes, control characters, non-ASCII and JSON's own escapes, in ids and in output texts (the
    # SQLite backend carries a batch as one JSON text: each must survive its encoder and SQLite's decoder).
    odd = 'q"b\\s\x01\t\u2028é😀'
    output = json.dumps({"type": "t", "s": odd, "u": "\\u0041"}, ensure_ascii=False)
    rows = [SessionNodeResult(0, f"{odd}#0", odd, (), output),
            SessionNodeResult(1, "it#1", "it", (3,), json.dumps({"type": "t", "s": odd})),
            SessionNodeResult(2, "deep#2", "deep", (1, 2**20, 0), "{}")]
    await store.append_progress(item_id, rows)
    assert await store.list_results(item_id, limit=10) == rows


def test_a_batch_with_a_lone_surrogate_is_still_encoded() -> None:
    from invoke_sqlite_storage.session_queue import _results_json

    rows = [SessionNodeResult(0, "a\ud800#0", "a\ud800", (1,), "{}")]
    # pydantic-core's encoder refuses a surrogate (no UTF-8 for it); json.dumps escapes it, as before.
    assert json.loads(_results_json(rows)) == [[0, "a\ud800#0", "a\ud800", path_key((1,)), "{}"]]
    assert json.loads(_results_json([SessionNodeResult(0, "a#0", "a", (1,), "{}")])) == [
        [0, "a#0", "a", "11", "{}"]]


async def test_appending_the_same_rows_again_stores_each_output_once(backend: AnyBackend) -> None:
    store = backend.session_queue
    item_id = await _running_item(backend)
    batch = [row(0, "a#0", value=1), row(1, "b#0", value=2)]
    await store.append_progress(item_id, batch)
    # A retried write, and a retry of the item whose run wrote other outputs for the same nodes: first one stays.
    await store.append_progress(item_id, batch)
    await store.append_progress(item_id, [row(0, "a#0", value=99), row(2, "b#0", value=99), row(2, "c#0", value=3)])
    # The same instance of b (source node and iteration path) under another number is the same output.
    await store.append_progress(item_id, [SessionNodeResult(3, "b#7", "b", (), '{"value": 98}')])
    stored = await store.list_results(item_id, limit=10)
    assert [(r.seq, r.node_id, json.loads(r.output_json)["value"]) for r in stored] == [
        (0, "a#0", 1), (1, "b#0", 2), (2, "c#0", 3)]


async def test_errors_are_stored_once_and_an_unknown_item_is_refused(backend: AnyBackend) -> None:
    store = backend.session_queue
    item_id = await _running_item(backend)
    error = SessionNodeError("bad#0", "bad", "NodeInputError", "no good", "Traceback ...", field="value")
    await store.append_progress(item_id, [row(0, "ok#0")], [error])
    await store.append_progress(item_id, [], [error])
    assert await store.list_errors(item_id) == [error]
    assert await store.list_errors(10**6) == []
    with pytest.raises(QueueItemNotFoundError):
        await store.append_progress(10**6, [row(0, "a#0")])
    with pytest.raises(QueueItemNotFoundError):
        await store.append_progress(2**70, [row(0, "a#0")])


def _file_bytes(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def test_pruning_a_large_item_shrinks_the_file_and_clear_deletes_the_rows(tmp_path: Path) -> None:
    # SQLite only: about giving a file's pages back (PostgreSQL's autovacuum reuses the space of deleted rows).
    path = tmp_path / "invoke.db"
    backend = SqliteBackend(path)
    await backend.start()
    try:
        store = backend.session_queue
        big = await _running_item(backend)
        text = json.dumps({"type": "t", "text": "x" * 2_000})
        for start in range(0, 6_000, 1_000):  # about 12 MB of results
            await store.append_progress(big, [SessionNodeResult(seq, f"n#{seq}", "n", (seq,), text)
                                              for seq in range(start, start + 1_000)])
        await store.finish(big, "completed")
        small = await _running_item(backend)
        await store.append_progress(small, [row(0, "a#0")])
        before = _file_bytes(path)
        assert before > 12_000_000
        assert await store.prune("default") == 1
        after = _file_bytes(path)
        assert after < before / 10, (before, after)
        assert await store.list_results(big, limit=1) == [] and await store.result_counts(big) == {}
        assert await store.result_counts(small) == {"a": 1}  # the running item keeps its rows
        assert await store.clear("default") == 1
        assert await store.result_counts(small) == {}
    finally:
        await backend.stop()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM session_results").fetchone() == (0,)
        assert conn.execute("PRAGMA auto_vacuum").fetchone() == (2,)


@pytest.mark.parametrize("count", [1, 191, 192, 193, 1000])
async def test_a_batch_of_any_size_is_stored_whole_and_in_order(backend: AnyBackend, count: int) -> None:
    # The SQLite backend splits a batch into statements of at most ROWS_PER_STATEMENT rows (the last ones of a
    # batch into powers of two): every row lands once, whatever the split.
    store = backend.session_queue
    item_id = await _running_item(backend)
    rows = [row(seq, f"add#{seq}", (seq,), seq * 3) for seq in range(count)]
    await store.append_progress(item_id, rows[: count // 2])
    await store.append_progress(item_id, rows[count // 2 :])
    assert await store.list_results(item_id, limit=count + 1) == rows
    assert await store.result_counts(item_id) == {"add": count}


def test_the_statements_of_a_batch_cover_it_once_in_few_distinct_texts() -> None:
    from invoke_sqlite_storage.result_inserts import ROWS_PER_STATEMENT, result_statements

    texts: set[str] = set()
    for count in range(0, 3 * ROWS_PER_STATEMENT + 2):
        rows = [row(seq, f"a#{seq}", (seq,)) for seq in range(count)]
        statements = result_statements(7, rows)
        bound = [p for _, params in statements for p in params[1:]]
        assert bound[0::5] == list(range(count)) and all(params[0] == 7 for _, params in statements)
        assert all(sql.count("(?1,") * 5 + 1 == len(params) <= 999 for sql, params in statements)
        texts.update(sql for sql, _ in statements)
    # Full statements plus one per power of two below ROWS_PER_STATEMENT: the statement cache is not flooded.
    assert len(texts) <= 1 + ROWS_PER_STATEMENT.bit_length()


async def test_a_row_with_a_lone_surrogate_is_stored_with_its_batch(backend: AnyBackend) -> None:
    if not isinstance(backend, SqliteBackend):
        pytest.skip("the fallback for values SQLite cannot bind")
    store = backend.session_queue
    item_id = await _running_item(backend)
    rows = [row(0, "a#0"), row(1, "d#0"), SessionNodeResult(2, "b\ud800#0", "b\ud800", (1,), "{}"), row(3, "c#0")]
    await store.append_progress(item_id, rows)
    # The surrogate's row is in (SQLite keeps the escaped text, which it cannot give back as UTF-8), and so is
    # every row around it, once.
    assert await store.list_results(item_id, limit=2) == rows[:2]
    assert await store.list_results(item_id, after_seq=2, limit=5) == rows[3:]
    with pytest.raises(sqlite3.OperationalError, match="UTF-8"):
        await store.list_results(item_id, after_seq=1, limit=1)
