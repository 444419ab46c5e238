"""The workflow store and the queue's retry, against every backend (``backend`` is parametrised)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from invoke_sdk.session_queue import NewQueueItem
from invoke_sdk.storage import StorageError
from invoke_sdk.workflows import WorkflowChanges, WorkflowQuery, WorkflowStore

from tests.storage.conftest import make_batch

GRAPH = '{"nodes":{"a":{"type":"add","version":"1.0.0"}},"edges":[]}'


async def _save(store: Any, workflow_id: str, name: str, tags: list[str], description: str = "") -> None:
    await store.create(workflow_id, name=name, description=description, tags=tags, graph_json=GRAPH,
                       workflow_json=None)


async def test_a_workflow_round_trips_exactly_and_changes_only_what_is_given(backend: Any) -> None:
    store = backend.workflows
    assert isinstance(store, WorkflowStore)
    created = await store.create("w1", name="Portrait", description="a face", tags=["people", "sd"],
                                 graph_json=GRAPH, workflow_json='{"name": "Portrait", "nodes": []}')
    assert (created.workflow_id, created.name, created.description, created.tags) == ("w1", "Portrait", "a face",
                                                                                      ["people", "sd"])
    assert created.graph_json == GRAPH and created.workflow_json == '{"name": "Portrait", "nodes": []}'
    assert await store.get("w1") == created
    assert await store.get("nope") is None

    changed = await store.update("w1", WorkflowChanges(tags=["sd"], workflow_json=None))
    assert changed is not None
    assert (changed.name, changed.description, changed.tags, changed.graph_json, changed.workflow_json) == (
        "Portrait", "a face", ["sd"], GRAPH, None)
    assert changed.created_at == created.created_at and changed.updated_at >= created.updated_at
    assert await store.update("nope", WorkflowChanges(name="x")) is None

    with pytest.raises(StorageError, match="w1"):
        await _save(store, "w1", "again", [])
    assert await store.count() == 1
    assert await store.delete("w1") is True
    assert await store.delete("w1") is False
    assert await store.get("w1") is None and await store.count() == 0


async def test_pages_filter_by_text_and_any_tag_in_each_order(backend: Any) -> None:
    store = backend.workflows
    await _save(store, "b", "beta Landscape", ["nature"])
    await _save(store, "a", "Alpha", ["people", "nature"], description="a 100% portrait")
    await _save(store, "c", "gamma", ["people"])
    await _save(store, "d", "delta_x", [])

    async def ids(**query: Any) -> list[str]:
        page = await store.list(WorkflowQuery(**query), offset=0, limit=10)
        assert page.total == len(page.items)
        return [w.workflow_id for w in page.items]

    assert await ids(order_by="name", direction="ASC") == ["a", "b", "d", "c"]
    assert await ids(order_by="name", direction="DESC") == ["c", "d", "b", "a"]
    assert await ids(order_by="created_at", direction="ASC") == ["b", "a", "c", "d"]
    assert await ids(query="LANDSCAPE", order_by="name", direction="ASC") == ["b"]
    assert await ids(query="100%", order_by="name", direction="ASC") == ["a"]  # in the description, % literal
    assert await ids(query="a_x", order_by="name", direction="ASC") == ["d"]  # _ literal: 'alpha' does not match
    assert await ids(tags=["people"], order_by="name", direction="ASC") == ["a", "c"]
    assert await ids(tags=["nature", "people"], order_by="name", direction="ASC") == ["a", "b", "c"]
    assert await ids(tags=["nature"], query="alpha") == ["a"]
    assert await ids(tags=["none"]) == []

    second = await store.list(WorkflowQuery(order_by="name", direction="ASC"), offset=2, limit=1)
    assert [w.workflow_id for w in second.items] == ["d"] and second.total == 4
    updated = await store.update("c", WorkflowChanges(tags=["nature"]))
    assert updated is not None
    assert await ids(tags=["people"], order_by="name", direction="ASC") == ["a"]
    assert (await ids(order_by="updated_at", direction="DESC"))[0] == "c"


def _failed_item_session(batch_id: str) -> tuple[str, str]:
    session_id = uuid.uuid4().hex
    return session_id, json.dumps({"id": session_id, "batch_id": batch_id, "graph": {"nodes": {}, "edges": []}})


async def test_retry_adds_a_pending_copy_of_each_failed_or_canceled_item_and_keeps_the_original(
    backend: Any,
) -> None:
    queue = backend.session_queue
    batch, items = make_batch(n=3)
    result = await queue.enqueue(batch, items, prepend=True)
    failed, canceled, pending = result.item_ids
    await queue.finish(canceled, "canceled")
    claimed = await queue.claim_next("default", worker_id="w")
    assert claimed is not None and claimed.item_id == failed
    await queue.finish(failed, "failed", worker_id="w")
    before = {i: await queue.get(i) for i in (failed, canceled)}

    retries = []
    for original in (failed, canceled, pending, 99_999):
        session_id, session_json = _failed_item_session(batch.batch_id)
        retries.append((original, NewQueueItem(session_id=session_id, session_json=session_json, model_key="m")))
    done_pairs = await queue.retry("default", retries)
    assert [old for old, _ in done_pairs] == [failed, canceled]
    new_ids = [new for _, new in done_pairs]
    assert new_ids[0] > pending and new_ids[1] == new_ids[0] + 1
    for (old, new), (_, item) in zip(done_pairs, retries, strict=False):
        again = await queue.get(new)
        assert again is not None
        original = before[old]
        assert original is not None and original.status in ("failed", "canceled")
        assert (again.status, again.batch_id, again.priority, again.attempts, again.model_key) == (
            "pending", batch.batch_id, original.priority, 0, "m")
        assert again.session == json.loads(item.session_json)
        assert await queue.get(old) == before[old]  # the original is untouched
    assert await queue.retry("other-queue", retries[:1]) == []
    status = await queue.batch_status("default", batch.batch_id)
    assert status is not None and (status.total, status.pending) == (5, 3)
