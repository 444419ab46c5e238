"""Claims with leases (on both backends where a test takes ``backend``): who holds an item, renewals, reclaims,
guarded writes, pause, affinity.

Several backends on one database stand for several processes: each has its own connections (and, on SQLite,
threads), so the locks they share are the database's (SQLite's writer lock, PostgreSQL's row locks), exactly as
between processes.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from invoke_postgres_storage.migrations import MIGRATIONS as POSTGRES_MIGRATIONS
from invoke_sdk.session_queue import BatchRecord, NewQueueItem, SessionNodeResult
from invoke_sdk.storage import LeaseLostError
from invoke_sqlite_storage import SqliteBackend
from invoke_sqlite_storage.migrations import MIGRATIONS as SQLITE_MIGRATIONS

from tests.storage.conftest import make_batch
from tests.storage_backends import BackendMaker


def _expire(maker: BackendMaker, *item_ids: int) -> None:
    """End the leases of these items now, on a connection of its own (what time passing does)."""
    maker.execute(*(("UPDATE queue_items SET lease_expires_at = '2000-01-01T00:00:00.000Z' WHERE item_id = ?", (i,))
                    for i in item_ids))


def _with_models(keys: list[str | None]) -> tuple[BatchRecord, list[NewQueueItem]]:
    batch = BatchRecord(batch_id=uuid.uuid4().hex, queue_id="default", requested=len(keys))
    return batch, [NewQueueItem(session_id=uuid.uuid4().hex, session_json="{}", model_key=k) for k in keys]


async def test_a_claim_records_worker_attempt_and_lease_and_the_api_fields(backend: SqliteBackend) -> None:
    store = backend.session_queue
    await store.enqueue(*make_batch(n=2), prepend=False)
    item = await store.claim_next(worker_id="w1", lease_seconds=30)
    assert item is not None and (item.item_id, item.worker_id, item.attempts) == (1, "w1", 1)
    summary = await store.get_summary(2)
    assert summary is not None and (summary.worker_id, summary.attempts) == (None, 0)
    assert await store.renew_leases("w1", [1], 30) == []
    assert await store.lost_leases("w1", [1]) == []
    assert await store.lost_leases("w2", [1]) == [1]  # another worker never holds it
    assert await store.renew_leases("w2", [1], 30) == [1]


async def test_an_expired_lease_is_reclaimed_then_failed_after_max_attempts(
    backend: SqliteBackend, backend_maker: BackendMaker
) -> None:
    store = backend.session_queue
    await store.enqueue(*make_batch(n=1), prepend=False)
    await store.claim_next(worker_id="w1", lease_seconds=30)
    assert await store.reclaim_expired(2, "why") == []  # a live lease is left alone
    _expire(backend_maker, 1)
    [back] = await store.reclaim_expired(2, "why")
    assert (back.status, back.attempts, back.worker_id) == ("pending", 1, "w1")
    assert await store.lost_leases("w1", [1]) == [1]
    retry = await store.claim_next(worker_id="w2", lease_seconds=30)
    assert retry is not None and (retry.worker_id, retry.attempts) == ("w2", 2)
    _expire(backend_maker, 1)
    [failed] = await store.reclaim_expired(2, "the worker died twice")
    assert (failed.status, failed.error_type, failed.error_message, failed.attempts) == (
        "failed", "LeaseExpiredError", "the worker died twice", 2)
    assert await store.reclaim_expired(2, "again") == []


async def test_a_worker_that_lost_its_item_can_neither_write_nor_finish_it(
    backend: SqliteBackend, backend_maker: BackendMaker
) -> None:
    store = backend.session_queue
    await store.enqueue(*make_batch(n=1), prepend=False)
    await store.claim_next(worker_id="zombie", lease_seconds=30)
    row = SessionNodeResult(0, "a#0", "a", (), '{"type": "x"}')
    await store.append_progress(1, [row], worker_id="zombie")
    _expire(backend_maker, 1)
    await store.reclaim_expired(3, "why")
    await store.claim_next(worker_id="w2", lease_seconds=30)
    late = SessionNodeResult(1, "b#0", "b", (), '{"type": "x"}')
    with pytest.raises(LeaseLostError, match="'zombie' no longer holds queue item 1"):
        await store.append_progress(1, [late], worker_id="zombie")
    unchanged = await store.finish(1, "completed", worker_id="zombie")
    assert (unchanged.status, unchanged.worker_id) == ("in_progress", "w2")
    # The new holder resumes from the zombie's stored row and finishes.
    assert [r.node_id for r in await store.list_results(1, limit=10)] == ["a#0"]
    await store.append_progress(1, [late], worker_id="w2")
    assert (await store.finish(1, "completed", worker_id="w2")).status == "completed"


async def test_a_claim_claimed_again_under_the_same_name_is_fenced_by_its_attempt(
    backend: SqliteBackend, backend_maker: BackendMaker
) -> None:
    # A worker paused past its lease: its item went back and was claimed again under the same name (a second slot
    # of that worker, or a replacement started with the same --name). Only the claim's attempt tells them apart.
    store = backend.session_queue
    await store.enqueue(*make_batch(n=1), prepend=False)
    first = await store.claim_next(worker_id="w1", lease_seconds=30)
    assert first is not None and first.attempts == 1
    _expire(backend_maker, 1)
    await store.reclaim_expired(3, "why")
    again = await store.claim_next(worker_id="w1", lease_seconds=30)
    assert again is not None and again.attempts == 2
    row = SessionNodeResult(0, "a#0", "a", (), '{"type": "x"}')
    with pytest.raises(LeaseLostError, match="'w1' no longer holds queue item 1 under its claim of attempt 1"):
        await store.append_progress(1, [row], worker_id="w1", attempt=1)
    assert await store.list_results(1, limit=10) == []
    assert await store.lost_leases("w1", [1], attempts={1: 1}) == [1]
    assert await store.renew_leases("w1", [1], 30, attempts={1: 1}) == [1]
    unchanged = await store.finish(1, "completed", worker_id="w1", attempt=1)
    assert (unchanged.status, unchanged.attempts) == ("in_progress", 2)
    # The current claim writes, renews and finishes; so does a write naming no attempt (the worker guard only).
    assert await store.lost_leases("w1", [1], attempts={1: 2}) == []
    assert await store.renew_leases("w1", [1], 30, attempts={1: 2}) == []
    assert await store.lost_leases("w1", [1]) == []
    await store.append_progress(1, [row], worker_id="w1", attempt=2)
    assert [r.node_id for r in await store.list_results(1, limit=10)] == ["a#0"]
    assert (await store.finish(1, "completed", worker_id="w1", attempt=2)).status == "completed"


async def test_a_canceled_run_still_stores_what_it_did_but_cannot_complete(backend: SqliteBackend) -> None:
    store = backend.session_queue
    await store.enqueue(*make_batch(n=1), prepend=False)
    await store.claim_next(worker_id="w1", lease_seconds=30)
    assert (await store.finish(1, "canceled")).status == "canceled"  # a cancel names no worker
    assert await store.lost_leases("w1", [1]) == [1]
    await store.append_progress(1, [SessionNodeResult(0, "a#0", "a", (), "{}")], worker_id="w1")
    assert (await store.finish(1, "completed", worker_id="w1")).status == "canceled"


async def test_giving_a_lease_up_lets_the_next_reclaim_take_the_item_back_at_once(backend: SqliteBackend) -> None:
    store = backend.session_queue
    await store.enqueue(*make_batch(n=1), prepend=False)
    await store.claim_next(worker_id="w1", lease_seconds=3600)
    assert await store.renew_leases("w1", [1], 0) == []
    # The lease ends at the claim's millisecond; the reclaim compares with a later one.
    for _ in range(100):
        reclaimed = await store.reclaim_expired(2, "why")
        if reclaimed:
            break
        await asyncio.sleep(0.002)
    assert [(i.item_id, i.status) for i in reclaimed] == [(1, "pending")]


async def test_pause_is_per_queue_stored_and_skipped_by_claims(backend_maker: BackendMaker) -> None:
    first = backend_maker.new()
    await first.start()
    await first.session_queue.enqueue(*make_batch("a", n=1), prepend=False)
    await first.session_queue.enqueue(*make_batch("b", n=1), prepend=False)
    await first.session_queue.set_paused("a", True)
    await first.stop()
    second = backend_maker.new()  # a restart
    await second.start()
    try:
        store = second.session_queue
        assert await store.paused_queues() == {"a"}
        taken = await store.claim_next(worker_id="w", lease_seconds=30)
        assert taken is not None and taken.queue_id == "b"
        assert await store.claim_next(worker_id="w", lease_seconds=30) is None
        assert await store.claim_next("a", worker_id="w", lease_seconds=30) is None
        await store.set_paused("a", False)
        assert await store.paused_queues() == set()
        again = await store.claim_next(worker_id="w", lease_seconds=30)
        assert again is not None and again.queue_id == "a"
    finally:
        await second.stop()


async def test_affinity_prefers_a_held_model_but_never_past_the_wait_bound(backend: SqliteBackend) -> None:
    store = backend.session_queue
    await store.enqueue(*_with_models(["m-old", None, "m-held", "m-held"]), prepend=False)
    held = await store.claim_next(worker_id="w", prefer_models=["m-held"], affinity_max_wait_s=3600)
    assert held is not None and (held.item_id, held.model_key) == (3, "m-held")
    plain = await store.claim_next(worker_id="w")
    assert plain is not None and plain.item_id == 1  # no preference: queue order
    # Every item has waited at least 0 s: with that bound the oldest goes first whatever the worker holds.
    waited = await store.claim_next(worker_id="w", prefer_models=["m-held"], affinity_max_wait_s=0)
    assert waited is not None and waited.item_id == 2
    # A higher priority still goes first: affinity orders items within one priority.
    await store.enqueue(*_with_models(["m-other"]), prepend=True)
    first = await store.claim_next(worker_id="w", prefer_models=["m-held"], affinity_max_wait_s=3600)
    assert first is not None and first.model_key == "m-other"


async def test_concurrent_claimers_in_several_backends_never_share_an_item(backend_maker: BackendMaker) -> None:
    backends = [backend_maker.new() for _ in range(4)]
    for b in backends:
        await b.start()
    try:
        for _ in range(3):
            await backends[0].session_queue.enqueue(*make_batch(n=100), prepend=False)
        claimed: dict[int, str] = {}
        twice: list[int] = []

        async def claimer(backend: SqliteBackend, name: str) -> None:
            while True:
                item = await backend.session_queue.claim_next(worker_id=name, lease_seconds=30)
                if item is None:
                    return
                if item.item_id in claimed:
                    twice.append(item.item_id)
                claimed[item.item_id] = name
                await backend.session_queue.finish(item.item_id, "completed", worker_id=name)

        await asyncio.gather(*(claimer(b, f"w{n}-{k}") for n, b in enumerate(backends) for k in range(4)))
        assert twice == [] and sorted(claimed) == list(range(1, 301))
        assert len(set(claimed.values())) > 1  # they really competed
        counts = await backends[1].session_queue.counts("default")
        assert (counts.completed, counts.total) == (300, 300)
    finally:
        for b in backends:
            await b.stop()


async def test_the_lease_migration_gives_items_running_before_it_an_ended_lease(backend_maker: BackendMaker) -> None:
    # The step before leases: SQLite's migration 5, PostgreSQL's 3.
    before = SQLITE_MIGRATIONS[:5] if backend_maker.kind == "sqlite" else POSTGRES_MIGRATIONS[:3]
    old = backend_maker.new(migrations=before)
    await old.start()
    await old.session_queue.enqueue(*make_batch(n=2), prepend=False)
    await old.stop()
    backend_maker.execute("UPDATE queue_items SET status = 'in_progress' WHERE item_id = 1")  # what a claim did then
    new = backend_maker.new()
    await new.start()
    try:
        [back] = await new.session_queue.reclaim_expired(2, "why")
        assert (back.item_id, back.status, back.attempts, back.worker_id) == (1, "pending", 1, None)
        untouched = await new.session_queue.get_summary(2)
        assert untouched is not None and (untouched.status, untouched.attempts) == ("pending", 0)
    finally:
        await new.stop()
