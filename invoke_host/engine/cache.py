"""The output cache: a node whose type and inputs match an earlier run returns that run's output.

One cache serves every processor of a host (the composition root builds it), within a size limit in bytes. An
entry is right only while what its node's inputs and output name still exists unchanged: each entry is indexed by
those references (images, stored tensors and conditioning, models; see :mod:`invoke_host.engine.references`), so
an image deleted or a model edited drops exactly the entries that name it (:meth:`OutputCache.invalidate`), and
stored objects, which nothing deletes through the host, are checked on each hit when the host says how.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from invoke_sdk import BaseInvocation, BaseInvocationOutput

from invoke_host.engine.output_size import ALLOCATION_OVERHEAD, memory_size
from invoke_host.engine.references import Reference, references
from invoke_host.graph import COLLECT_TYPE, ITERATE_TYPE

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MIN_NODE_SECONDS", "OutputCache", "OutputCacheStats"]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MIN_NODE_SECONDS = 0.001
"""An output that names nothing stored, of a node that ran for less than this, is not kept (see
:meth:`OutputCache.offer`)."""
_NOT_INPUTS = {"id", "is_intermediate", "use_cache"}
# Iterate and collect only move values around; keying them would cost as much as running them.
_NEVER_CACHED = {ITERATE_TYPE, COLLECT_TYPE}
# What an entry costs beyond its key and output, in memory: the entry record, its size (an int), its slot in the
# ordered dict (the dict's entry and index, and the order's node). Measured with tracemalloc (tests/engine).
_ENTRY_OVERHEAD = 200
# Each reference an entry is indexed by: its slot in that reference's set of keys.
_REFERENCE_OVERHEAD = 100
# One empty set of references for every entry that names nothing (most): ``frozenset()`` is a new 216-byte object
# each time, 20% of a small entry.
_NO_REFERENCES: frozenset[Reference] = frozenset()
# Entries compact() copies between two offers of the interpreter lock to other threads.
_COMPACT_STEP = 1_000
_CHECKED_KINDS = frozenset({"tensor", "conditioning"})

def _cacheable(node: BaseInvocation) -> bool:
    """Whether a node may be cached at all: ``use_cache`` on, and not an engine node."""
    return bool(node.use_cache) and node.type not in _NEVER_CACHED  # type: ignore[attr-defined]


ObjectCheck = Callable[[str], bool]
"""Whether a stored object of one kind still exists, by name (a tensor or conditioning store's ``exists``)."""


@dataclass(frozen=True)
class OutputCacheStats:
    """Counters and current usage, for the status route, logs and tests."""

    hits: int
    misses: int
    entries: int
    size_bytes: int
    max_bytes: int
    evictions: int
    """Entries dropped to stay within ``max_bytes`` (or ``max_size``)."""
    invalidations: int
    """Entries dropped because something they name was deleted or changed."""
    not_kept_quick: int = 0
    """Outputs not kept because their node ran in less than ``min_node_seconds`` and they name nothing stored."""


@dataclass(slots=True)
class _Entry:
    output: BaseInvocationOutput
    size: int
    refs: frozenset[Reference]
    checked: tuple[Reference, ...]
    """The references checked on each hit (stored objects, when the cache was given checks for them)."""
    settled: bool = False
    """Copied by :meth:`OutputCache.compact` (or found not to survive a copy): not copied again."""


class OutputCache:
    """A bounded LRU of node outputs keyed by node type + input values; thread-safe.

    ``max_bytes`` bounds the memory the entries take together (each its key, its output's Python objects as
    :func:`~invoke_host.engine.output_size.memory_size` counts them, and the entry's own record); 0 turns the
    cache off. ``max_size``, if given, also bounds how many entries it holds.
    ``object_checks`` maps a stored object kind (``"tensor"``, ``"conditioning"``) to a function saying whether an
    object of that name still exists: an entry naming one that is gone is dropped on the hit that finds it.
    ``min_node_seconds``: what :meth:`offer` keeps (0 keeps every output).
    """

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        max_size: int | None = None,
        object_checks: Mapping[str, ObjectCheck] | None = None,
        min_node_seconds: float = DEFAULT_MIN_NODE_SECONDS,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_size = max_size
        self.min_node_seconds = min_node_seconds
        self._kept_types: set[str] = set()
        """Node types that ever had an output kept: only their nodes can find an entry (:meth:`may_hold`)."""
        self._kept_untyped = False
        """Whether an output was put with no node to say its type (then any type may have entries)."""
        self._not_kept_quick = 0
        self._checks = {kind: check for kind, check in (object_checks or {}).items() if kind in _CHECKED_KINDS}
        self._items: OrderedDict[str, _Entry] = OrderedDict()
        self._by_reference: dict[Reference, set[str]] = {}
        self._lock = threading.Lock()
        self._size = 0
        self._generation = 0
        self.hits = 0
        self.misses = 0
        self._evictions = 0
        self._invalidations = 0
        self._unsettled = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and (self.max_size is None or self.max_size > 0)

    @property
    def generation(self) -> int:
        """Changes with every invalidation: read it before a node runs and give it to :meth:`put`, so an output
        computed while something it names was deleted or changed is not cached."""
        return self._generation

    @staticmethod
    def key(node: BaseInvocation) -> str | None:
        """The cache key of a node, or None if it must run (``use_cache`` off, or an engine node)."""
        if not _cacheable(node):
            return None
        # The JSON of the inputs includes "type", so two node types never share a key.
        return node.model_dump_json(exclude=_NOT_INPUTS)

    def may_hold(self, node_type: str) -> bool:
        """Whether a node of this type can find an entry: only a type that ever had an output kept can, so a node
        of any other type need not compute its key to look (the lookup would miss)."""
        return self.enabled and (self.min_node_seconds <= 0 or self._kept_untyped or node_type in self._kept_types)

    def offer(
        self,
        node: BaseInvocation,
        output: BaseInvocationOutput,
        *,
        seconds: float,
        key: str | None = None,
        size_bytes: int | None = None,
        generation: int | None = None,
    ) -> bool:
        """Cache what ``node`` returned after running for ``seconds``, unless running it again costs no more than
        keeping it; return whether it was kept. ``key`` is the node's :meth:`key` if it was computed to look.

        An output that names nothing stored (no image, tensor, conditioning or model: a number, a string, a prompt)
        of a node that ran in less than ``min_node_seconds`` is not kept. A hit would save at most that time and
        costs a key of a few microseconds, while the entry takes memory and the place of outputs worth seconds:
        a 100,000-item iterate of ``add`` nodes filled a 64 MiB cache with 70,939 such entries, evicting
        everything else, and left them for the idle processor to copy (docs/benchmarks.md, the cache's admission,
        h-admit). An output that names something is always offered: reusing it also reuses what it made (an
        image is not saved again), however quickly it was made.
        """
        if not self.enabled or not _cacheable(node):
            return False
        refs = references(output) | references(node)
        if not refs and seconds < self.min_node_seconds:
            with self._lock:
                self._not_kept_quick += 1
            return False
        if key is None:
            key = self.key(node)
            if key is None:
                return False
        return self._put(key, output, refs, node.type, size_bytes, generation)  # type: ignore[attr-defined]

    def get(self, key: str) -> BaseInvocationOutput | None:
        """The cached output for ``key``, or None (a miss)."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            if not entry.checked:
                self.hits += 1
                return entry.output
        if not all(self._checks[ref.kind](ref.name) for ref in entry.checked):
            # A stored object it names is gone (its file was removed): the output no longer holds.
            with self._lock:
                if self._items.get(key) is entry:
                    self._remove(key)
                    self._invalidations += 1
                self.misses += 1
            return None
        with self._lock:
            self.hits += 1
        return entry.output

    def put(
        self,
        key: str,
        output: BaseInvocationOutput,
        *,
        node: BaseInvocation | None = None,
        size_bytes: int | None = None,
        generation: int | None = None,
    ) -> bool:
        """Cache ``output`` of ``node`` under ``key``; return whether it was kept.

        ``size_bytes`` is the output's size as stored, if the runner measured it: an output whose stored size
        alone passes the limit is refused without walking it. ``generation`` is :attr:`generation` as read before
        the node ran: if an invalidation came since, an output that names anything is not kept (it may have been
        made from what was just dropped).
        """
        if not self.enabled:
            return False
        refs = references(output)
        if node is not None:
            refs |= references(node)
        return self._put(key, output, refs, node.type if node is not None else None,  # type: ignore[attr-defined]
                         size_bytes, generation)

    def _put(self, key: str, output: BaseInvocationOutput, refs: frozenset[Reference], node_type: str | None,
             size_bytes: int | None, generation: int | None) -> bool:
        if size_bytes is not None and size_bytes > self.max_bytes:
            return False
        if not refs:
            refs = _NO_REFERENCES
        # Counted as the memory it holds, not as JSON: 100,000 small outputs counted as 27 MiB of JSON took over
        # 100 MB of objects, so the limit did not bound the server's memory (docs/benchmarks.md).
        size = (sys.getsizeof(key) + ALLOCATION_OVERHEAD + memory_size(output) + _ENTRY_OVERHEAD
                + _REFERENCE_OVERHEAD * len(refs))
        if size > self.max_bytes:
            return False
        checked = tuple(ref for ref in refs if ref.kind in self._checks)
        with self._lock:
            if refs and generation is not None and generation != self._generation:
                return False
            if key in self._items:
                self._remove(key)
            if node_type is None:
                self._kept_untyped = True
            else:
                self._kept_types.add(node_type)
            self._items[key] = _Entry(output, size, refs, checked)
            self._unsettled += 1
            self._size += size
            for ref in refs:
                self._by_reference.setdefault(ref, set()).add(key)
            while self._size > self.max_bytes or (self.max_size is not None and len(self._items) > self.max_size):
                self._remove(next(iter(self._items)))
                self._evictions += 1
        return True

    def invalidate(self, refs: Iterable[Reference]) -> int:
        """Drop every entry whose node's inputs or output name one of ``refs``; return how many were dropped."""
        dropped = 0
        with self._lock:
            self._generation += 1
            for ref in refs:
                for key in self._by_reference.get(ref, set()).copy():
                    self._remove(key)
                    dropped += 1
            self._invalidations += dropped
        return dropped

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        with self._lock:
            self._generation += 1
            self._items.clear()
            self._by_reference.clear()
            self._size = self._unsettled = 0
            self.hits = self.misses = self._evictions = self._invalidations = self._not_kept_quick = 0

    @property
    def unsettled(self) -> int:
        """About how many entries were put since the last :meth:`compact` (evicted ones included)."""
        return self._unsettled

    def compact(self) -> int:
        """Copy the entries put since the last compaction into objects allocated by the calling thread, and the
        index with them; return how many were copied. Blocking: a few microseconds an entry.

        An entry's objects (its key, its output, the output's values) were allocated while its session ran,
        among the session's own objects: after the session is freed, each entry still holds a page or so of the
        heap that ``malloc_trim`` cannot give back (a full 64 MiB cache of small outputs kept 110 MB more than
        it held, docs/benchmarks.md). Copied by one long-lived thread (glibc gives each thread its own arena,
        see :func:`invoke_host.memory.in_own_arena`), they lie together and the session's pages go back. A copy
        is made through the output's JSON and kept only if it equals the output (an output that does not
        survive JSON, such as an infinite float, stays as it was).
        """
        with self._lock:
            fresh = [(key, entry) for key, entry in self._items.items() if not entry.settled]
            self._unsettled = 0
        copies: dict[str, tuple[str, _Entry, _Entry]] = {}
        # The copies are hundreds of thousands of new objects: each run of the collector they set off walked every
        # object of the process (the cache's own included), two thirds of the compaction's time (70,939 entries:
        # 2.2 s, 0.7 s with it paused). Nothing here makes a cycle.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._copy(fresh, copies)
        finally:
            if collecting:
                gc.enable()
        del fresh
        if not copies:
            return 0
        copied = 0
        with self._lock:
            rebuilt: OrderedDict[str, _Entry] = OrderedDict()
            for key, entry in self._items.items():
                made = copies.get(key)
                if made is None or made[2] is not entry:  # not copied, or replaced since: kept as it is
                    rebuilt[key] = entry
                    continue
                new_key, new_entry, _ = made
                rebuilt[new_key] = new_entry
                copied += 1
                for ref in entry.refs:
                    keys = self._by_reference.get(ref)
                    if keys is not None:  # the index holds the new key too, so the old one goes
                        keys.discard(key)
                        keys.add(new_key)
            self._items = rebuilt
        return copied

    @staticmethod
    def _copy(fresh: list[tuple[str, _Entry]], copies: dict[str, tuple[str, _Entry, _Entry]]) -> None:
        """(compact) Copy each fresh entry into ``copies`` by key, with its new key and the entry it replaces."""
        for number, (key, entry) in enumerate(fresh, 1):
            output = entry.output
            copy: BaseInvocationOutput | None
            try:
                copy = type(output).model_validate_json(output.model_dump_json())
            except Exception:  # noqa: BLE001 - an output JSON cannot carry is kept as it is
                copy = None
            if copy is None or copy != output:
                entry.settled = True
                continue
            # The fields set as the node set them (JSON sets them all), so a dump leaving out unset ones is the same.
            object.__setattr__(copy, "__pydantic_fields_set__", set(output.__pydantic_fields_set__))
            # ``+ 0`` and ``encode().decode()`` make new objects (here), where int() and str() return the same.
            copies[key] = (key.encode().decode(), _Entry(copy, entry.size + 0, entry.refs, entry.checked, True), entry)
            if number % _COMPACT_STEP == 0:
                time.sleep(0)  # hands the interpreter lock to a waiting thread (the event loop) now

    def stats(self) -> OutputCacheStats:
        with self._lock:
            return OutputCacheStats(
                hits=self.hits, misses=self.misses, entries=len(self._items), size_bytes=self._size,
                max_bytes=self.max_bytes, evictions=self._evictions, invalidations=self._invalidations,
                not_kept_quick=self._not_kept_quick,
            )

    def __len__(self) -> int:
        return len(self._items)

    def _remove(self, key: str) -> None:
        """Forget one entry and its index slots (called with the lock held)."""
        entry = self._items.pop(key)
        self._size -= entry.size
        for ref in entry.refs:
            keys = self._by_reference.get(ref)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_reference[ref]
