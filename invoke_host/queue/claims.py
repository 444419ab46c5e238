"""The claims this host's processors are running, by session: what a node's image save is fenced with.

Node results and the item's end are fenced in the store itself (the claim's ``attempts`` goes with every write,
see :meth:`invoke_sdk.storage.SessionQueueStore.append_progress`). An image is written by the images service,
which knows nothing of queue items; so before a node of a running item saves one, the save asks here whether the
claim still holds (a read by primary key), and a worker whose lease was lost and whose item was claimed again
writes no image record and no file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from invoke_sdk.storage import LeaseLostError

from invoke_host.queue.service import QueueService

__all__ = ["Claim", "RunningClaims"]

logger = logging.getLogger("invoke_host.queue")


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim of an item: who took it and which attempt it was (the ``attempts`` the claim returned)."""

    item_id: int
    worker_id: str
    attempt: int


class RunningClaims:
    """The claims of the items running on this host, by session id (one session per item)."""

    def __init__(self, queue: QueueService) -> None:
        self.queue = queue
        self._by_session: dict[str, Claim] = {}

    def hold(self, session_id: str, claim: Claim) -> None:
        self._by_session[session_id] = claim

    def release(self, session_id: str) -> None:
        self._by_session.pop(session_id, None)

    async def check(self, session_id: str) -> None:
        """Raise :class:`~invoke_sdk.storage.LeaseLostError` when the running claim of this session no longer
        holds its item; nothing for a session no processor here runs (``invoke-host run``, a test)."""
        claim = self._by_session.get(session_id)
        if claim is None:
            return
        lost = await self.queue.lost_leases(claim.worker_id, [claim.item_id], attempts={claim.item_id: claim.attempt})
        if lost:
            logger.warning("Refused an image save for queue item %d: %s no longer holds it under attempt %d (its "
                           "lease was lost and the item claimed again)", claim.item_id, claim.worker_id, claim.attempt)
            raise LeaseLostError(claim.item_id, claim.worker_id, claim.attempt)
