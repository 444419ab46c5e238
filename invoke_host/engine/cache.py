"""The output cache: a node whose type and inputs match an earlier run returns that run's output."""

from __future__ import annotations

import threading
from collections import OrderedDict

from invoke_sdk import BaseInvocation, BaseInvocationOutput

from invoke_host.graph import COLLECT_TYPE, ITERATE_TYPE

__all__ = ["OutputCache"]

_NOT_INPUTS = {"id", "is_intermediate", "use_cache"}
# Iterate and collect only move values around; keying them would cost as much as running them.
_NEVER_CACHED = {ITERATE_TYPE, COLLECT_TYPE}


class OutputCache:
    """A bounded LRU of node outputs keyed by node type + input values; thread-safe."""

    def __init__(self, max_size: int = 512) -> None:
        self.max_size = max_size
        self._items: OrderedDict[str, BaseInvocationOutput] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(node: BaseInvocation) -> str | None:
        """The cache key of a node, or None if it must run (``use_cache`` off, or an engine node)."""
        node_type: str = node.type  # type: ignore[attr-defined]
        if not node.use_cache or node_type in _NEVER_CACHED:
            return None
        # The JSON of the inputs includes "type", so two node types never share a key.
        return node.model_dump_json(exclude=_NOT_INPUTS)

    def get(self, key: str) -> BaseInvocationOutput | None:
        with self._lock:
            output = self._items.get(key)
            if output is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return output

    def put(self, key: str, output: BaseInvocationOutput) -> None:
        if self.max_size <= 0:
            return
        with self._lock:
            self._items[key] = output
            self._items.move_to_end(key)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)
