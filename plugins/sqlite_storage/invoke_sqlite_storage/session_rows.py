"""How the rows of session progress are keyed in SQLite: the iteration path as text that sorts like the tuple.

Each index of the path is written as one hex digit giving its length, then the index in that many hex digits
(``0`` -> ``10``, ``10`` -> ``1a``, ``300`` -> ``312c``): a shorter number always sorts first, and numbers of
one length sort as their digits do, so comparing two keys as text compares the paths as tuples. Instances of
one source node all have paths of one length, which is all the ``(item_id, source_node_id, path)`` index needs.
"""

from __future__ import annotations

__all__ = ["path_from_key", "path_key"]

_LENGTH = "0123456789abcdef"  # the length digit; an index has at most 15 hex digits


def _part(index: int) -> str:
    digits = format(index, "x")
    if len(digits) > 15 or digits[0] == "-":
        raise ValueError(f"iteration index {index} is out of range")
    return _LENGTH[len(digits)] + digits


def path_key(path: tuple[int, ...]) -> str:
    """The sortable text of an iteration path (empty for a node under no iterate). Called once per stored row."""
    if len(path) == 1:  # the common case (one iterate), without the join
        return _part(path[0])
    return "".join(map(_part, path))


def path_from_key(key: str) -> tuple[int, ...]:
    """The path :func:`path_key` wrote."""
    path = []
    i = 0
    while i < len(key):
        length = int(key[i], 16)
        path.append(int(key[i + 1 : i + 1 + length], 16))
        i += 1 + length
    return tuple(path)
