"""InvokeAI's ``InvocationContext``: here, the adapter every compat node's ``invoke`` receives."""

from invokeai_compat.context import InvokeAIContext as InvocationContext

__all__ = ["InvocationContext"]
