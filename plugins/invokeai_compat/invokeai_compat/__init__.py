"""The machinery behind the ``invokeai`` compatibility package: pack registration and the context adapter."""

from invokeai_compat.unsupported import NotSupportedHere

__all__ = ["NotSupportedHere"]
