"""The host's download slots: at most ``download_concurrency`` model downloads at once, of either kind.

Two kinds of download share them: installs (async tasks on the host loop, :mod:`.install`) and the download cache
(``context.models.download_and_cache_model``, blocking in a node's worker thread, :mod:`.download_cache`). An
``asyncio.Semaphore`` serves only one loop and a ``threading.Semaphore`` would block the loop, so the slots are
counted under a lock and handed, first come first served, to the next waiter of either kind as one is freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator

__all__ = ["DownloadSlots", "SlotWaitCanceledError"]

_CANCEL_POLL_S = 0.1


class SlotWaitCanceledError(Exception):
    """The download was canceled while it waited for a slot; it took none."""


class _Waiter:
    """One download waiting for a slot; ``granted`` is set under the slots' lock when one is handed to it."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake
        self.granted = False


class DownloadSlots:
    """``limit`` slots; :meth:`hold` for a blocking download in a thread, :meth:`held` for one on an event loop."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"download_concurrency must be at least 1, not {limit}")
        self.limit = limit
        self._lock = threading.Lock()
        self._free = limit
        self._waiters: deque[_Waiter] = deque()

    @property
    def waiting(self) -> int:
        """Downloads waiting for a slot now."""
        with self._lock:
            return len(self._waiters)

    @property
    def running(self) -> int:
        """Downloads holding a slot now."""
        with self._lock:
            return self.limit - self._free

    @contextlib.contextmanager
    def hold(self, cancelled: Callable[[], bool] = lambda: False) -> Iterator[None]:
        """Hold a slot for the block, waiting for one first (blocking; for a node's thread). ``cancelled()`` is
        checked while waiting: once true, :class:`SlotWaitCanceledError` is raised and no slot is taken."""
        event = threading.Event()
        waiter = self._enqueue(event.set)
        if waiter is not None:
            while not event.wait(_CANCEL_POLL_S):
                if cancelled() and self._leave(waiter):
                    raise SlotWaitCanceledError("canceled while waiting for a download slot")
        try:
            yield
        finally:
            self._release()

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Hold a slot for the block, waiting for one first without blocking the loop; cancellable."""
        loop = asyncio.get_running_loop()
        granted: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            # The loop may be closed already (the host stopped): its waiters were cancelled with it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: granted.done() or granted.set_result(None))

        waiter = self._enqueue(wake)
        if waiter is not None:
            try:
                await granted
            except asyncio.CancelledError:
                if not self._leave(waiter):
                    self._release()  # handed a slot as it was cancelled: pass it on
                raise
        try:
            yield
        finally:
            self._release()

    def _enqueue(self, wake: Callable[[], None]) -> _Waiter | None:
        """Take a free slot (None) or join the queue (the waiter to wait on)."""
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return None
            waiter = _Waiter(wake)
            self._waiters.append(waiter)
            return waiter

    def _leave(self, waiter: _Waiter) -> bool:
        """Leave the queue; False when a slot was handed to ``waiter`` already (then it holds it)."""
        with self._lock:
            if waiter.granted:
                return False
            self._waiters.remove(waiter)
            return True

    def _release(self) -> None:
        """Free a slot: it goes straight to the longest waiter, if any."""
        with self._lock:
            if not self._waiters:
                self._free += 1
                return
            waiter = self._waiters.popleft()
            waiter.granted = True
        waiter.wake()
