"""InvokeAI's model config union and factory: configs here are the host's (``context.models.get_config``)."""

from __future__ import annotations

from typing import Any

from invokeai_compat.unsupported import unsupported

__all__ = ["AnyModelConfig", "ModelConfigFactory"]

AnyModelConfig = Any
"""Any installed model's config; on this host, one of the configs its plugins registered."""


class ModelConfigFactory:
    """InvokeAI's config factory; models are probed by the host's probers (``invoke-host models add``)."""

    @classmethod
    def from_model_on_disk(cls, *args: Any, **kwargs: Any) -> Any:
        unsupported("ModelConfigFactory.from_model_on_disk", "install models with `invoke-host models add`")

    @classmethod
    def make_config(cls, *args: Any, **kwargs: Any) -> Any:
        unsupported("ModelConfigFactory.make_config", "install models with `invoke-host models add`")
