"""``PUT /api/v1/queue/{queue_id}/retry_items_by_id``: retry failed or canceled items, keeping the originals."""

from typing import Annotated

from litestar import put
from litestar.exceptions import HTTPException
from litestar.params import Body, FromPath

from invoke_host.api.injected import Injected, ensure_available
from invoke_host.queue import QueueService
from invoke_host.queue.retry import RetryItemsResult

__all__ = ["retry_items_by_id"]


@put(
    "/queue/{queue_id:str}/retry_items_by_id",
    tags=["queue"],
    summary="Retry failed or canceled items: a new pending item for each, the original kept",
    description="Items that are not failed or canceled, or not of this queue, are skipped; retried_item_ids "
    "lists the ones retried, new_item_ids the items made for them, in the same order.",
    status_code=200,
)
async def retry_items_by_id(
    queue: Injected[QueueService],
    queue_id: FromPath[str],
    data: Annotated[list[int], Body(description="The ids of the items to retry")],
) -> RetryItemsResult:
    ensure_available(queue)
    most = queue.max_batch_size
    if len(data) > most:
        raise HTTPException(
            status_code=413,
            detail=f"{len(data)} items asked to be retried, more than max_batch_size (INVOKE_HOST_MAX_BATCH_SIZE="
            f"{most}) allows at once; retry them in smaller groups",
        )
    return await queue.retry_items_by_id(queue_id, data)
