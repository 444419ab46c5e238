"""The output cache listening on the event bus: a deleted image drops the cached outputs that name it.

The images service only emits :class:`~invoke_sdk.images.ImageDeletedEvent`; it knows nothing of caches. The
composition root puts this sink on the host's bus, so the cache hears of every delete (one image, a list, the
intermediates) the moment it is emitted, on the event loop, before the request that deleted them answers.
"""

from __future__ import annotations

import logging

from invoke_sdk.events import BaseEvent
from invoke_sdk.images import ImageDeletedEvent

from invoke_host.engine.cache import OutputCache
from invoke_host.engine.references import Reference

__all__ = ["OutputCacheSink"]

logger = logging.getLogger("invoke_host.engine")


class OutputCacheSink:
    """An event sink (a selective one: it asks for image deletes only) that invalidates ``cache``."""

    name = "output_cache"

    def __init__(self, cache: OutputCache) -> None:
        self.cache = cache

    async def start(self) -> None:
        """Nothing to start: delivery is a call on the cache."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def wants(self, event_name: str) -> bool:
        return event_name == ImageDeletedEvent.event_name

    def deliver(self, event: BaseEvent) -> None:
        if not isinstance(event, ImageDeletedEvent):
            return
        dropped = self.cache.invalidate(Reference("image", name) for name in event.image_names)
        if dropped:
            logger.info("Dropped %d cached output(s) naming %d deleted image(s)", dropped, len(event.image_names))
