"""What a node output takes in memory as Python objects, for the output cache's byte limit.

The cache used to count an entry as its key and its output's stored JSON: an ``IntegerOutput`` is 30 bytes of
JSON but about 530 bytes of objects (the model, its ``__dict__``, its ``__pydantic_fields_set__`` and the int),
so a cache "full" at 27 MiB held 100,000 such entries in over 100 MB (tracemalloc, docs/benchmarks.md). This
walk counts the objects themselves: ``sys.getsizeof`` of each, plus what the allocator spends on each block.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel

__all__ = ["ALLOCATION_OVERHEAD", "memory_size"]

ALLOCATION_OVERHEAD = 16
"""Bytes glibc's malloc adds to each block it hands out (its chunk header and alignment), on 64-bit Linux."""

_getsizeof = sys.getsizeof


def memory_size(value: Any) -> int:
    """Bytes of memory ``value`` (a node output, or anything inside one) takes, counting every object it reaches
    once per reference (an object shared with others is counted for each: the estimate errs high)."""
    return _size(value, 0)


def _size(value: Any, depth: int) -> int:
    t = type(value)
    kind = _KINDS.get(t)
    if kind is None:
        kind = _KINDS[t] = _kind_of(t)
    if kind == _MODEL:
        fields = value.__dict__
        fields_set = value.__pydantic_fields_set__
        shape = (t, len(fields), len(fields_set))
        total = _SHELLS.get(shape)
        if total is None:
            total = _SHELLS[shape] = _shell_size(value)
        for item in fields.values():
            # Most fields are numbers, strings and None: sized here, without a call.
            i = type(item)
            if i is str or i is float:
                total += _getsizeof(item) + ALLOCATION_OVERHEAD
            elif i is int:
                if not -5 <= item <= 256:
                    total += _getsizeof(item) + ALLOCATION_OVERHEAD
            elif item is not None and i is not bool:
                total += _size(item, depth + 1)
        return total
    if kind == _SHARED:
        return 0
    if kind == _INT:
        return 0 if -5 <= value <= 256 else _getsizeof(value) + ALLOCATION_OVERHEAD
    if kind == _LEAF or depth > _MAX_DEPTH:
        return _getsizeof(value) + ALLOCATION_OVERHEAD  # deeper than outputs go: counted shallowly, not walked
    total = _getsizeof(value) + ALLOCATION_OVERHEAD
    if kind == _MAPPING:
        for key, item in value.items():
            total += _size(key, depth + 1) + _size(item, depth + 1)
    else:
        for item in value:
            total += _size(item, depth + 1)
    return total


_MODEL, _SHARED, _INT, _LEAF, _MAPPING, _SEQUENCE = range(6)
_MAX_DEPTH = 64
# The kind of each type met, decided once (an isinstance check against BaseModel costs more than the sizing).
_KINDS: dict[type, int] = {type(None): _SHARED, bool: _SHARED, int: _INT, str: _LEAF, float: _LEAF, bytes: _LEAF}


# The model object, its __dict__ and its set of fields, by (class, fields, fields set): the same for every output of
# one shape, so measured once (three getsizeof calls were half of the sizing of a small output).
_SHELLS: dict[tuple[type, int, int], int] = {}


def _shell_size(model: BaseModel) -> int:
    fields_set = model.__pydantic_fields_set__
    total = _getsizeof(model) + _getsizeof(model.__dict__) + 2 * ALLOCATION_OVERHEAD
    return total + (_getsizeof(fields_set) + ALLOCATION_OVERHEAD if fields_set else 0)


def _kind_of(t: type) -> int:
    if issubclass(t, BaseModel):
        return _MODEL
    if issubclass(t, dict):
        return _MAPPING
    if issubclass(t, list | tuple | set | frozenset):
        return _SEQUENCE
    if issubclass(t, bool):
        return _SHARED
    if issubclass(t, int):
        return _INT
    return _LEAF
