"""Image nodes (InvokeAI's type ids and field names): only ``invoke_sdk`` and Pillow."""

from __future__ import annotations

from typing import Any

__all__ = ["NODES"]


def __getattr__(name: str) -> Any:
    # ``NODES`` is imported when asked for: the host imports this package for its entry module (plugin.py) at every
    # start, and on a start from the node catalogue no node class of it is needed until a graph or document uses one
    # (its node module is 7-10 ms of pydantic classes).
    if name == "NODES":
        from invoke_image_nodes.nodes import NODES

        return NODES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
