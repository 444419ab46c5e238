"""Whether a value of one field type may flow into a field of another: the rules edges are checked with."""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

__all__ = ["compatible", "describe_type", "is_any", "is_list", "list_item", "strip_optional"]

_NONE = type(None)


def _unwrap(t: Any) -> Any:
    while get_origin(t) is Annotated:
        t = get_args(t)[0]
    return t


def _is_union(t: Any) -> bool:
    return get_origin(t) in (Union, types.UnionType)


def strip_optional(t: Any) -> Any:
    """``X | None`` -> ``X`` (a None value is never what flows along an edge)."""
    t = _unwrap(t)
    if _is_union(t):
        args = [a for a in get_args(t) if a is not _NONE]
        if len(args) == 1:
            return strip_optional(args[0])
        return Union[tuple(args)]  # noqa: UP007 - built at run time
    return t


def is_any(t: Any) -> bool:
    t = strip_optional(t)
    return t is Any or (_is_union(t) and any(a is Any for a in get_args(t)))


def is_list(t: Any) -> bool:
    t = strip_optional(t)
    return get_origin(t) in (list, tuple, set) or t in (list, tuple, set)


def list_item(t: Any) -> Any:
    """The item type of a list type (``Any`` for a bare ``list``)."""
    args = get_args(strip_optional(t))
    return args[0] if args else Any


def _literal_base(t: Any) -> Any:
    values = get_args(t)
    kinds = {type(v) for v in values}
    return kinds.pop() if len(kinds) == 1 else None


def compatible(src: Any, dst: Any) -> bool:
    """Whether an output of type ``src`` may feed an input of type ``dst``.

    Like InvokeAI: Any matches everything, int feeds float, int and float feed str, subclasses feed
    their bases, and a union input takes any of its members. Unlike InvokeAI's check, a list never
    feeds a single-value input and a single value never feeds a list input.
    """
    src, dst = strip_optional(src), strip_optional(dst)
    if is_any(src) or is_any(dst) or src == dst:
        return True
    if _is_union(dst):
        return any(compatible(src, d) for d in get_args(dst))
    if _is_union(src):
        return all(compatible(s, dst) for s in get_args(src))
    if is_list(src) or is_list(dst):
        return is_list(src) and is_list(dst) and compatible(list_item(src), list_item(dst))
    if get_origin(src) is Literal:
        base = _literal_base(src)
        return base is not None and compatible(base, dst)
    if get_origin(dst) is Literal:
        # A Literal input only takes a Literal output whose values it allows.
        return False
    if src is int and dst is float:
        return True
    if src in (int, float) and dst is str:
        return True
    if isinstance(src, type) and isinstance(dst, type):
        try:
            return issubclass(src, dst)
        except TypeError:
            return False
    return False


def describe_type(t: Any) -> str:
    """A short readable name for a field type (``list[int]``, ``ImageField``, ``Any``)."""
    t = _unwrap(t)
    if t is Any:
        return "Any"
    if _is_union(t):
        return " | ".join(describe_type(a) for a in get_args(t))
    origin = get_origin(t)
    if origin is not None:
        args = ", ".join(describe_type(a) if not isinstance(a, str) else repr(a) for a in get_args(t))
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{args}]"
    if t is _NONE:
        return "None"
    return getattr(t, "__name__", str(t))
