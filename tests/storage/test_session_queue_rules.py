"""The session-queue store's promises (every backend), each pinned exactly: ids, pages, priorities, clear and prune."""

from __future__ import annotations

import pytest
from invoke_sdk.storage import StorageError

from tests.storage.conftest import make_batch
from tests.storage_backends import AnyBackend, BackendMaker


def _rows(maker: BackendMaker, table: str, queue_id: str) -> int:
    """Rows of a table, read on a connection of its own: what the store left behind, not what it reports."""
    return int(maker.scalar(f"SELECT COUNT(*) FROM {table} WHERE queue_id = ?", (queue_id,)))


async def test_the_first_ids_of_a_new_database_are_1_to_n_in_batch_order(backend: AnyBackend) -> None:
    batch, items = make_batch(n=3)
    result = await backend.session_queue.enqueue(batch, items, prepend=False)
    assert result.item_ids == [1, 2, 3]
    stored = [await backend.session_queue.get(i) for i in result.item_ids]
    assert [s.session_id for s in stored if s is not None] == [i.session_id for i in items]


async def test_item_ids_are_never_reused_after_clear(backend: AnyBackend) -> None:
    store = backend.session_queue
    assert (await store.enqueue(*make_batch(n=3), prepend=False)).item_ids == [1, 2, 3]
    assert await store.clear("default") == 3
    assert (await store.enqueue(*make_batch(n=2), prepend=False)).item_ids == [4, 5]
    await store.claim_next()
    await store.finish(4, "completed")
    await store.cancel_pending("default")
    assert await store.prune("default") == 2
    assert (await store.enqueue(*make_batch(n=1), prepend=False)).item_ids == [6]


async def test_item_ids_are_never_reused_after_clear_and_a_restart(backend_maker: BackendMaker) -> None:
    first = backend_maker.new()
    await first.start()
    await first.session_queue.enqueue(*make_batch(n=4), prepend=False)
    await first.session_queue.clear("default")
    await first.stop()
    second = backend_maker.new()
    await second.start()
    try:
        assert (await second.session_queue.enqueue(*make_batch(n=2), prepend=False)).item_ids == [5, 6]
    finally:
        await second.stop()


async def test_clear_removes_the_queues_batches_and_only_them(
    backend: AnyBackend, backend_maker: BackendMaker
) -> None:
    store = backend.session_queue
    mine, mine_items = make_batch(n=2)
    other, other_items = make_batch(queue_id="other", n=1)
    await store.enqueue(mine, mine_items, prepend=False)
    await store.enqueue(other, other_items, prepend=False)
    assert await store.clear("default") == 2
    assert await store.batch_status("default", mine.batch_id) is None
    assert (_rows(backend_maker, "batches", "default"), _rows(backend_maker, "queue_items", "default")) == (0, 0)
    status = await store.batch_status("other", other.batch_id)
    assert status is not None and status.pending == 1
    assert (_rows(backend_maker, "batches", "other"), _rows(backend_maker, "queue_items", "other")) == (1, 1)
    assert await store.clear("nothing-here") == 0


async def test_prune_keeps_a_batch_that_still_has_items(backend: AnyBackend, backend_maker: BackendMaker) -> None:
    store = backend.session_queue
    done, done_items = make_batch(n=2)
    mixed, mixed_items = make_batch(n=2)
    ids_done = (await store.enqueue(done, done_items, prepend=False)).item_ids
    ids_mixed = (await store.enqueue(mixed, mixed_items, prepend=False)).item_ids
    for item_id in (*ids_done, ids_mixed[0]):
        await store.claim_next()
        await store.finish(item_id, "completed")
    assert await store.prune("default") == 3
    assert await store.batch_status("default", done.batch_id) is None
    status = await store.batch_status("default", mixed.batch_id)
    assert status is not None and (status.pending, status.total) == (1, 1)
    assert _rows(backend_maker, "batches", "default") == 1


async def test_has_more_is_exact_on_the_last_page(backend: AnyBackend) -> None:
    store = backend.session_queue
    ids = (await store.enqueue(*make_batch(n=4), prepend=False)).item_ids
    exact = await store.list_items("default", limit=4)
    assert [i.item_id for i in exact.items] == ids
    assert (exact.has_more, exact.next_cursor, exact.total, exact.limit) == (False, None, 4, 4)
    first = await store.list_items("default", limit=2)
    assert (first.has_more, first.next_cursor) == (True, f"0:{ids[1]}")
    last = await store.list_items("default", limit=2, cursor=first.next_cursor)
    assert [i.item_id for i in last.items] == ids[2:]
    assert (last.has_more, last.next_cursor, last.offset) == (False, None, None)
    by_offset = await store.list_items("default", limit=2, offset=2)
    assert [i.item_id for i in by_offset.items] == ids[2:]
    assert (by_offset.has_more, by_offset.next_cursor, by_offset.offset) == (False, None, 2)
    one_more = await store.list_items("default", limit=3, offset=0)
    assert (one_more.has_more, one_more.offset, len(one_more.items)) == (True, 0, 3)
    single = await store.list_items("default", limit=1)
    assert [i.item_id for i in single.items] == ids[:1] and single.has_more
    empty = await store.list_items("nobody", limit=5)
    assert (empty.items, empty.has_more, empty.next_cursor, empty.total) == ([], False, None, 0)


async def test_a_cursor_carries_the_priority_of_its_item(backend: AnyBackend) -> None:
    store = backend.session_queue
    back = (await store.enqueue(*make_batch(n=2), prepend=False)).item_ids
    front = (await store.enqueue(*make_batch(n=2), prepend=True)).item_ids
    page = await store.list_items("default", limit=1)
    assert page.next_cursor == f"1:{front[0]}"
    seen = [i.item_id for i in page.items]
    while page.next_cursor is not None:
        page = await store.list_items("default", limit=1, cursor=page.next_cursor)
        seen += [i.item_id for i in page.items]
    assert seen == front + back


@pytest.mark.parametrize("limit", [0, -1])
async def test_a_limit_below_one_is_refused(backend: AnyBackend, limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        await backend.session_queue.list_items("default", limit=limit)


@pytest.mark.parametrize("cursor", ["1", "a:b", "1:2:3", f"{2**63}:1", f"0:{2**63}", f"{-(2**63) - 1}:1",
                                    f"0:{-(2**63) - 1}"])
async def test_a_cursor_not_given_out_by_the_server_is_refused(backend: AnyBackend, cursor: str) -> None:
    with pytest.raises(ValueError, match="is not one this server gave out"):
        await backend.session_queue.list_items("default", limit=2, cursor=cursor)


async def test_cursors_at_the_ends_of_the_integer_range_are_accepted(backend: AnyBackend) -> None:
    ids = (await backend.session_queue.enqueue(*make_batch(n=2), prepend=False)).item_ids
    page = await backend.session_queue.list_items("default", limit=5, cursor=f"{2**63 - 1}:{-(2**63)}")
    assert [i.item_id for i in page.items] == ids  # every priority is below the largest
    page = await backend.session_queue.list_items("default", limit=5, cursor=f"{-(2**63)}:{2**63 - 1}")
    assert page.items == []


@pytest.mark.parametrize("item_id", [2**63, -(2**63) - 1, 10**30])
async def test_get_of_an_id_outside_the_integer_range_is_none(backend: AnyBackend, item_id: int) -> None:
    assert await backend.session_queue.get(item_id) is None


async def test_prepend_priority_is_one_above_the_highest_pending(backend: AnyBackend) -> None:
    store = backend.session_queue
    assert (await store.enqueue(*make_batch(n=1), prepend=False)).priority == 0
    assert (await store.enqueue(*make_batch(n=1), prepend=True)).priority == 1
    second = await store.enqueue(*make_batch(n=1), prepend=True)
    assert second.priority == 2
    assert (await store.enqueue(*make_batch(n=1), prepend=False)).priority == 0
    # Once the prepended items are no longer pending, a prepend starts over above what is pending.
    for _ in range(2):
        item = await store.claim_next()
        assert item is not None
        await store.finish(item.item_id, "completed")
    assert (await store.enqueue(*make_batch(n=1), prepend=True)).priority == 1
    assert (await store.enqueue(*make_batch(queue_id="empty", n=1), prepend=True)).priority == 1


async def test_enqueue_returns_the_stored_batch(backend: AnyBackend) -> None:
    batch, items = make_batch(n=2)
    batch.origin, batch.destination, batch.runs = "canvas", "gallery", 2
    result = await backend.session_queue.enqueue(batch, items, prepend=False)
    assert (result.queue_id, result.enqueued, result.requested) == ("default", 2, 2)
    assert result.batch.created_at is not None
    assert result.batch.model_dump(exclude={"created_at"}) == batch.model_dump(exclude={"created_at"})
    status = await backend.session_queue.batch_status("default", batch.batch_id)
    assert status is not None and (status.origin, status.destination, status.pending) == ("canvas", "gallery", 2)


async def test_a_refused_enqueue_stores_nothing(backend: AnyBackend) -> None:
    store = backend.session_queue
    batch, items = make_batch(n=2)
    await store.enqueue(batch, items, prepend=False)
    again, again_items = make_batch(n=2)
    again_items[1].session_id = items[0].session_id  # a session id already stored
    with pytest.raises(StorageError, match=again.batch_id):
        await store.enqueue(again, again_items, prepend=False)
    assert await store.batch_status("default", again.batch_id) is None
    assert (await store.counts("default")).total == 2
    assert (await store.enqueue(*make_batch(n=1), prepend=False)).item_ids == [3]


async def test_claim_takes_only_the_asked_queue(backend: AnyBackend) -> None:
    store = backend.session_queue
    mine = (await store.enqueue(*make_batch(queue_id="mine", n=1), prepend=False)).item_ids
    theirs = (await store.enqueue(*make_batch(queue_id="theirs", n=1), prepend=False)).item_ids
    claimed = await store.claim_next("theirs")
    assert claimed is not None and claimed.item_id == theirs[0]
    assert await store.claim_next("theirs") is None
    assert (await store.get(mine[0])).status == "pending"  # type: ignore[union-attr]
    current = await store.current("theirs")
    assert current is not None and current.item_id == theirs[0]
    assert await store.current("mine") is None


async def test_finish_refuses_a_status_that_is_not_final(backend: AnyBackend) -> None:
    (item_id,) = (await backend.session_queue.enqueue(*make_batch(n=1), prepend=False)).item_ids
    for status in ("pending", "in_progress"):
        with pytest.raises(ValueError, match="is not a final status"):
            await backend.session_queue.finish(item_id, status)  # type: ignore[arg-type]
    assert (await backend.session_queue.get(item_id)).status == "pending"  # type: ignore[union-attr]


async def test_a_pending_item_may_be_finished_without_a_session(backend: AnyBackend) -> None:
    batch, items = make_batch(n=1)
    (item_id,) = (await backend.session_queue.enqueue(batch, items, prepend=False)).item_ids
    done = await backend.session_queue.finish(item_id, "canceled")
    assert (done.status, done.error_type, done.error_message, done.field_values) == ("canceled", None, None, None)
    # finish answers the summary; the session stays as enqueued.
    stored = await backend.session_queue.get(item_id)
    assert stored is not None and stored.error_traceback is None
    assert stored.session == {"n": 0, "batch": batch.batch_id}


async def test_counts_and_batch_status_count_every_status(backend: AnyBackend) -> None:
    store = backend.session_queue
    batch, items = make_batch(n=5)
    ids = (await store.enqueue(batch, items, prepend=False)).item_ids
    for item_id, status in zip(ids[:3], ("completed", "failed", "canceled"), strict=True):
        await store.claim_next()
        await store.finish(item_id, status)  # type: ignore[arg-type]
    await store.claim_next()
    expected = {"pending": 1, "in_progress": 1, "completed": 1, "failed": 1, "canceled": 1, "total": 5}
    counts = await store.counts("default")
    assert counts.model_dump(exclude={"queue_id"}) == expected
    status = await store.batch_status("default", batch.batch_id)
    assert status is not None
    assert status.model_dump(include=set(expected)) == expected
    empty = await store.counts("none")
    assert empty.model_dump(exclude={"queue_id"}) == dict.fromkeys(expected, 0)


async def test_cancel_batches_cancels_only_unfinished_items_of_those_batches(backend: AnyBackend) -> None:
    store = backend.session_queue
    b1, i1 = make_batch(n=3)
    b2, i2 = make_batch(n=1)
    ids1 = (await store.enqueue(b1, i1, prepend=False)).item_ids
    ids2 = (await store.enqueue(b2, i2, prepend=False)).item_ids
    await store.claim_next()
    await store.finish(ids1[0], "completed")
    assert await store.cancel_batches("default", [b1.batch_id]) == ids1[1:]
    assert await store.cancel_batches("other", [b2.batch_id]) == []  # another queue's batch id
    assert (await store.get(ids2[0])).status == "pending"  # type: ignore[union-attr]
    assert (await store.get(ids1[0])).status == "completed"  # type: ignore[union-attr]


async def test_fail_interrupted_fails_only_running_items_in_id_order(backend: AnyBackend) -> None:
    store = backend.session_queue
    ids = (await store.enqueue(*make_batch(n=3), prepend=False)).item_ids
    ids_b = (await store.enqueue(*make_batch(queue_id="b", n=1), prepend=False)).item_ids
    await store.claim_next("b")
    await store.claim_next("default")
    failed = await store.fail_interrupted("stopped")
    assert [i.item_id for i in failed] == [ids[0], ids_b[0]]
    assert all((i.status, i.error_type, i.error_message) == ("failed", "ServerStoppedError", "stopped")
               for i in failed)
    assert all(i.completed_at is not None for i in failed)
    assert (await store.get(ids[1])).status == "pending"  # type: ignore[union-attr]
    assert await store.fail_interrupted("again") == []
