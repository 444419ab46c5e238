"""How the rows of session progress are keyed in SQLite: the iteration path as text that sorts like the tuple.

Each index of the path is written as one hex digit giving its length, then the index in that many hex digits
(``0`` -> ``10``, ``10`` -> ``1a``, ``300`` -> ``312c``): a shorter number always sorts first, and numbers of
one length sort as their digits do, so comparing two keys as text compares the paths as tuples. Instances of
one source node all have paths of one length, which is all the ``(item_id, source_node_id, path)`` index needs.
"""

from __future__ import annotations

__all__ = ["path_from_key", "path_key"]

_LIMIT = 16**15  # 15 hex digits: the length fits one digit


def path_key(path: tuple[int, ...]) -> str:
    """The sortable text of an iteration path (empty for a node under no iterate)."""
    if not path:
        return ""
    if min(path) < 0 or max(path) >= _LIMIT:
        raise ValueError(f"an iteration index of {path} is out of range")
    return "".join(f"{len(d):x}{d}" for d in map("{:x}".format, path))


def path_from_key(key: str) -> tuple[int, ...]:
    """The path :func:`path_key` wrote."""
    path = []
    i = 0
    while i < len(key):
        length = int(key[i], 16)
        path.append(int(key[i + 1 : i + 1 + length], 16))
        i += 1 + length
    return tuple(path)
