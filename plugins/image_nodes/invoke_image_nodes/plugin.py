"""Entry point: registers the image nodes."""

from __future__ import annotations

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterInvocation

__all__ = ["register_invocations"]


@hookimpl
def register_invocations(register: RegisterInvocation) -> None:
    from invoke_image_nodes.control_preprocessors import PREPROCESSOR_NODES
    from invoke_image_nodes.mask_nodes import MASK_NODES
    from invoke_image_nodes.nodes import NODES

    for node in (*NODES, *PREPROCESSOR_NODES, *MASK_NODES):
        register(node)
