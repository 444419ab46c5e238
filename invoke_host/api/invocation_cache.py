"""``/api/v1/app/invocation_cache``: the output cache's counters, and clearing it (InvokeAI's paths)."""

import msgspec
from litestar import delete, get

from invoke_host.api.injected import Injected
from invoke_host.engine import OutputCache

__all__ = ["InvocationCacheStatus", "clear_invocation_cache", "get_invocation_cache_status"]


class InvocationCacheStatus(msgspec.Struct):
    """The output cache of this server, shared by all its processors."""

    size: int
    """Entries held now."""
    size_bytes: int
    """Their size together: the memory their keys and outputs take as Python objects, plus each entry's record."""
    max_bytes: int
    """The limit (``output_cache_max_bytes``); past it the least recently used entries go."""
    enabled: bool
    hits: int
    """Nodes that did not run because their output was cached."""
    misses: int
    """Nodes that looked for an entry, found none and ran (a node type that never had an output kept does not look:
    quick outputs that name nothing are not kept, ``output_cache_min_node_seconds``)."""
    evictions: int
    invalidations: int
    """Entries dropped because an image, stored object or model they name was deleted or changed."""


def _status(cache: OutputCache) -> InvocationCacheStatus:
    stats = cache.stats()
    return InvocationCacheStatus(
        size=stats.entries, size_bytes=stats.size_bytes, max_bytes=stats.max_bytes, enabled=cache.enabled,
        hits=stats.hits, misses=stats.misses, evictions=stats.evictions, invalidations=stats.invalidations,
    )


@get("/app/invocation_cache/status", tags=["app"], summary="The output cache's size and hit/miss counters",
     sync_to_thread=False)
def get_invocation_cache_status(output_cache: Injected[OutputCache]) -> InvocationCacheStatus:
    return _status(output_cache)


@delete("/app/invocation_cache", tags=["app"], summary="Empty the output cache and reset its counters",
        status_code=200, sync_to_thread=False)
def clear_invocation_cache(output_cache: Injected[OutputCache]) -> InvocationCacheStatus:
    output_cache.clear()
    return _status(output_cache)
