"""Entry-point module: registers every core node (imports stay inside the hook to keep start-up light)."""

from __future__ import annotations

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterInvocation

__all__ = ["register_invocations"]


@hookimpl
def register_invocations(register: RegisterInvocation) -> None:
    from invoke_core_nodes import collections, math, metadata, primitives, strings

    for module in (primitives, math, collections, strings, metadata):
        for cls in module.NODES:
            register(cls)
