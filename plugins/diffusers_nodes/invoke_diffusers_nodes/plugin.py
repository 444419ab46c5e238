"""Entry module of the diffusers nodes: registers nodes and model loaders.

Kept light on purpose: torch, diffusers and transformers are imported inside the functions that
use them, never when the host loads this plugin.
"""

from __future__ import annotations

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterInvocation, RegisterModelLoader

__all__ = ["register_invocations", "register_model_loaders"]


@hookimpl
def register_invocations(register: RegisterInvocation) -> None:
    from invoke_diffusers_nodes.nodes import ALL_NODES

    for node in ALL_NODES:
        register(node)


@hookimpl
def register_model_loaders(register: RegisterModelLoader) -> None:
    from invoke_diffusers_nodes.control_loaders import control_loaders
    from invoke_diffusers_nodes.loaders import all_loaders

    for loader in [*all_loaders(), *control_loaders()]:
        register(loader)
