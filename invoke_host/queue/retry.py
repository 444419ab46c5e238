"""Retrying failed and canceled queue items by id (InvokeAI's ``retry_items_by_id``), keeping the originals.

Each retried item becomes a new pending item of its batch, with the original's priority, field values and graph
(in a session of its own id); the original stays as it was, failed or canceled, with its error and results. The
new item runs from the start; its graph is migrated to the installed node versions when it is claimed, like any.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from invoke_sdk.session_queue import NewQueueItem, QueueItem
from invoke_sdk.storage import SessionQueueStore
from pydantic import BaseModel, Field

__all__ = ["RETRYABLE", "RetryItemsResult", "retry_items"]

RETRYABLE = frozenset({"failed", "canceled"})
"""The statuses an item may be retried from."""


class RetryItemsResult(BaseModel):
    """What a retry did (InvokeAI's ``RetryItemsResult``, with the new items' ids beside)."""

    queue_id: str
    retried_item_ids: list[int] = Field(description="The items that were retried (failed or canceled ones asked for)")
    new_item_ids: list[int] = Field(description="The new pending item made for each, in the same order")


def _again(item: QueueItem) -> NewQueueItem:
    session_id = uuid.uuid4().hex
    session = {**item.session, "id": session_id}
    return NewQueueItem(
        session_id=session_id, session_json=json.dumps(session, separators=(",", ":")),
        field_values=item.field_values, model_key=item.model_key,
    )


async def retry_items(store: SessionQueueStore, queue_id: str, item_ids: Sequence[int]) -> RetryItemsResult:
    """A new pending item for each of ``item_ids`` that is a failed or canceled item of ``queue_id`` (others, and
    repeats, are skipped), stored in one transaction."""
    retries: list[tuple[int, NewQueueItem]] = []
    for item_id in dict.fromkeys(item_ids):
        item = await store.get(item_id)
        if item is not None and item.queue_id == queue_id and item.status in RETRYABLE:
            retries.append((item_id, _again(item)))
    done = await store.retry(queue_id, retries) if retries else []
    return RetryItemsResult(
        queue_id=queue_id, retried_item_ids=[old for old, _ in done], new_item_ids=[new for _, new in done]
    )
