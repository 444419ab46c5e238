"""Image nodes (InvokeAI's type ids and field names): only ``invoke_sdk`` and Pillow."""

from invoke_image_nodes.nodes import NODES

__all__ = ["NODES"]
