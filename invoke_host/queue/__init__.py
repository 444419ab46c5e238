"""The session queue: batch expansion and the queue service the API and the processor use."""

from invoke_host.queue.batch import Batch, BatchDatum, BatchError, EnqueueBatchBody
from invoke_host.queue.service import LEASE_EXPIRED_MESSAGE, QueueService

__all__ = ["LEASE_EXPIRED_MESSAGE", "Batch", "BatchDatum", "BatchError", "EnqueueBatchBody", "QueueService"]
