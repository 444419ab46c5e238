"""The session-queue store of every backend, on a real database (a SQLite file; a PostgreSQL database)."""

from __future__ import annotations

import asyncio

import pytest
from invoke_sdk.session_queue import NodeFieldValue, QueueItemError
from invoke_sdk.storage import QueueItemNotFoundError, SessionQueueStore, StorageBackend

from tests.storage.conftest import make_batch
from tests.storage_backends import AnyBackend, BackendMaker


async def test_backend_satisfies_the_sdk_protocols(backend: AnyBackend) -> None:
    assert isinstance(backend, StorageBackend)
    assert isinstance(backend.session_queue, SessionQueueStore)


async def test_enqueue_then_claim_in_priority_then_fifo_order(backend: AnyBackend) -> None:
    store = backend.session_queue
    b1, items1 = make_batch(n=2)
    b2, items2 = make_batch(n=2)
    b3, items3 = make_batch(n=1)
    r1 = await store.enqueue(b1, items1, prepend=False)
    r2 = await store.enqueue(b2, items2, prepend=False)
    r3 = await store.enqueue(b3, items3, prepend=True)
    assert r1.priority == 0 and r3.priority == 1
    assert r1.item_ids == sorted(r1.item_ids)
    claimed = []
    while (item := await store.claim_next("default")) is not None:
        claimed.append(item.item_id)
        assert item.status == "in_progress" and item.started_at is not None
    assert claimed == r3.item_ids + r1.item_ids + r2.item_ids


async def test_session_field_values_and_errors_round_trip(backend: AnyBackend) -> None:
    store = backend.session_queue
    batch, items = make_batch(n=1)
    items[0].field_values = [NodeFieldValue(node_path="a", field_name="b", value=[1, "x"])]
    (item_id,) = (await store.enqueue(batch, items, prepend=False)).item_ids
    item = await store.claim_next()
    assert item is not None and item.item_id == item_id
    assert item.session == {"n": 0, "batch": batch.batch_id}
    assert item.field_values == [NodeFieldValue(node_path="a", field_name="b", value=[1, "x"])]
    done = await store.finish(
        item_id,
        "failed",
        error=QueueItemError(error_type="ValueError", error_message="bad", error_traceback="Traceback..."),
    )
    assert (done.status, done.error_type, done.error_message) == ("failed", "ValueError", "bad")
    assert done.completed_at is not None
    stored = await store.get(item_id)
    assert stored is not None and stored.error_traceback == "Traceback..."
    assert stored.session == {"n": 0, "batch": batch.batch_id}  # never rewritten


async def test_a_final_item_never_changes_again(backend: AnyBackend) -> None:
    store = backend.session_queue
    batch, items = make_batch(n=1)
    (item_id,) = (await store.enqueue(batch, items, prepend=False)).item_ids
    await store.claim_next()
    assert (await store.finish(item_id, "canceled")).status == "canceled"
    # The run finishing after a cancel sees the cancel, not its own completion.
    after = await store.finish(item_id, "completed", error=QueueItemError(error_type="Late", error_message="x"))
    assert (after.status, after.error_type) == ("canceled", None)
    with pytest.raises(QueueItemNotFoundError):
        await store.finish(999_999, "completed")
    with pytest.raises(QueueItemNotFoundError):
        await store.append_progress(999_999, [])


async def test_counts_batch_status_cancel_prune_clear(backend: AnyBackend) -> None:
    store = backend.session_queue
    b1, i1 = make_batch(n=3)
    b2, i2 = make_batch(n=2)
    other, io = make_batch(queue_id="other", n=2)
    r1 = await store.enqueue(b1, i1, prepend=False)
    await store.enqueue(b2, i2, prepend=False)
    await store.enqueue(other, io, prepend=False)
    running = await store.claim_next("default")
    assert running is not None and running.item_id == r1.item_ids[0]
    counts = await store.counts("default")
    assert (counts.pending, counts.in_progress, counts.total) == (4, 1, 5)
    assert (await store.current("default")).item_id == running.item_id  # type: ignore[union-attr]

    canceled = await store.cancel_batches("default", [b1.batch_id])
    assert canceled == r1.item_ids  # the running one too
    status = await store.batch_status("default", b1.batch_id)
    assert status is not None and status.canceled == 3 and status.total == 3
    assert await store.batch_status("default", "nope") is None
    assert await store.batch_status("other", b1.batch_id) is None

    assert len(await store.cancel_pending("default")) == 2
    assert (await store.counts("other")).pending == 2  # other queues untouched
    assert await store.prune("default") == 5
    assert (await store.counts("default")).total == 0
    assert await store.clear("other") == 2
    assert (await store.counts("other")).total == 0


async def test_list_pages_by_cursor_and_offset(backend: AnyBackend) -> None:
    store = backend.session_queue
    b1, i1 = make_batch(n=5)
    b2, i2 = make_batch(n=2)
    r1 = await store.enqueue(b1, i1, prepend=False)
    r2 = await store.enqueue(b2, i2, prepend=True)
    order = r2.item_ids + r1.item_ids
    seen: list[int] = []
    cursor = None
    while True:
        page = await store.list_items("default", limit=3, cursor=cursor)
        assert page.total == 7
        seen += [i.item_id for i in page.items]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert seen == order
    page = await store.list_items("default", limit=2, offset=3)
    assert [i.item_id for i in page.items] == order[3:5] and page.has_more
    await store.claim_next()
    page = await store.list_items("default", limit=10, status="in_progress")
    assert [i.item_id for i in page.items] == order[:1] and page.total == 1
    with pytest.raises(ValueError, match="cursor"):
        await store.list_items("default", limit=3, cursor="garbage")


async def test_interrupted_items_are_failed_on_recovery(backend_maker: BackendMaker) -> None:
    first = backend_maker.new()
    await first.start()
    batch, items = make_batch(n=2)
    ids = (await first.session_queue.enqueue(batch, items, prepend=False)).item_ids
    await first.session_queue.claim_next()
    await first.stop()  # the process "dies" with one item in progress

    second = backend_maker.new()
    await second.start()
    try:
        failed = await second.session_queue.fail_interrupted("the server stopped while this item ran")
        assert [i.item_id for i in failed] == ids[:1]
        item = await second.session_queue.get(ids[0])
        assert item is not None and item.status == "failed"
        assert item.error_message == "the server stopped while this item ran"
        pending = await second.session_queue.get(ids[1])
        assert pending is not None and pending.status == "pending"  # nothing enqueued is lost
    finally:
        await second.stop()


async def test_concurrent_claimers_on_separate_connections_never_share_an_item(backend_maker: BackendMaker) -> None:
    options = {"readers": 1} if backend_maker.kind == "sqlite" else {"max_connections": 2}
    backends = [backend_maker.new(**options) for _ in range(4)]
    for b in backends:
        await b.start()
    try:
        batch, items = make_batch(n=200)
        ids = (await backends[0].session_queue.enqueue(batch, items, prepend=False)).item_ids

        async def claimer(b: AnyBackend) -> list[int]:
            got = []
            while (item := await b.session_queue.claim_next()) is not None:
                got.append(item.item_id)
            return got

        # Two claim loops per backend, four backends (each its own connections: as four nodes would).
        results = await asyncio.gather(*(claimer(b) for b in backends for _ in range(2)))
        claimed = [i for r in results for i in r]
        assert sorted(claimed) == ids  # every item claimed exactly once
        assert sum(1 for r in results if r) > 1  # the claimers really competed
    finally:
        for b in backends:
            await b.stop()
