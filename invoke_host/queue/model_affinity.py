"""The main model of a queue item, found in its graph at enqueue: what a worker's claim prefers (model affinity).

A worker that already holds a model in its cache runs an item that uses it without loading anything, so its
claim asks for such items first (``SessionQueueStore.claim_next(prefer_models=...)``, bounded by
``affinity_max_wait_s``). The key is read from the graph as submitted, not from the registry: a node field whose
value is a model identifier (``{"key": ..., "type": "main", ...}``) names the model it loads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["main_model_key"]

_MAIN = "main"
# Field values that cannot be a model identifier (an object), skipped without a call: most of a graph's values are
# these, and the call with its Mapping check cost 1.3 ms of a 1,000-node enqueue (issue #11).
_SCALARS = frozenset((str, int, float, bool, type(None)))


def _model_key(value: Any) -> str | None:
    if isinstance(value, Mapping) and value.get("type") == _MAIN and isinstance(value.get("key"), str):
        return str(value["key"])
    return None


def main_model_key(nodes: Mapping[str, Any], values: Iterable[Any] = ()) -> str | None:
    """The key of the first main model the graph's nodes name (in node order), or None.

    ``values`` are batch values put into the graph for this item (``NodeFieldValue``): one that is a main model
    wins, since it is what this item loads while the graph's own field is the batch's placeholder.
    """
    for value in values:
        key = _model_key(getattr(value, "value", None))
        if key is not None:
            return key
    for node in nodes.values():
        if type(node) is not dict and not isinstance(node, Mapping):  # a dict (from JSON) skips the ABC's check
            continue
        for field_value in node.values():
            if type(field_value) in _SCALARS:
                continue
            key = _model_key(field_value)
            if key is not None:
                return key
    return None
