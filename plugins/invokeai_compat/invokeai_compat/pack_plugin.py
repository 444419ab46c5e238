"""The hook a wrapped InvokeAI pack's plugin module exposes (``invoke-host packs wrap`` writes that module).

InvokeAI finds a pack's nodes because its decorators register them as they are imported. Here a pack is an
ordinary plugin: its plugin module imports the pack package (so the decorators run, in the host's error capture
for that plugin) and registers every node class the pack's own modules declared, nothing of anyone else's.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from invoke_sdk import BaseInvocation, hookimpl
from invoke_sdk.hookspecs import RegisterInvocation

from invokeai_compat.declared import declared_in

__all__ = ["pack_nodes", "register_pack"]


def pack_nodes(package: str) -> list[type[BaseInvocation]]:
    """Import ``package`` and return the node classes its modules declared with ``@invocation``."""
    importlib.import_module(package)
    return [cls for cls in declared_in(package) if issubclass(cls, BaseInvocation)]


def register_pack(package: str) -> Callable[[RegisterInvocation], None]:
    """A ``register_invocations`` hook implementation registering the nodes of ``package``.

    The package is imported when this is called (at plugin import), so an import error is that plugin's failure.
    """
    nodes = pack_nodes(package)

    def register_invocations(register: RegisterInvocation) -> None:
        for node in nodes:
            register(node)

    hooked: Callable[[RegisterInvocation], None] = hookimpl(register_invocations)
    return hooked


