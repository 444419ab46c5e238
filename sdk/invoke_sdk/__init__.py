"""Invoke SDK: everything a plugin author touches to extend Invoke Host.

A node pack depends on this distribution only. It defines nodes with :func:`invocation`,
outputs with :func:`invocation_output`, and registers them from a module named in the
``invoke_host.plugins`` entry-point group with a :data:`hookimpl` of ``register_invocations``.
"""

from invoke_sdk.context import InvocationContext
from invoke_sdk.fields import (
    ConditioningField,
    ImageField,
    Input,
    InputField,
    LatentsField,
    ModelIdentifierField,
    OutputField,
    TensorField,
)
from invoke_sdk.hookspecs import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl
from invoke_sdk.invocation import (
    BaseInvocation,
    BaseInvocationOutput,
    InvocationInfo,
    InvocationOutputInfo,
    invocation,
    invocation_output,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "BaseInvocation",
    "BaseInvocationOutput",
    "ConditioningField",
    "ImageField",
    "Input",
    "InputField",
    "InvocationContext",
    "InvocationInfo",
    "InvocationOutputInfo",
    "LatentsField",
    "ModelIdentifierField",
    "OutputField",
    "TensorField",
    "hookimpl",
    "invocation",
    "invocation_output",
]

__version__ = "0.1.0"
