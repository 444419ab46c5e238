"""Turning a dict into the right model config class (the frozen registry's union of every plugin's configs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from invoke_sdk.models import ModelConfigBase
from invoke_sdk.models.records import ConfigValidator

from invoke_host.registry import FrozenRegistry

__all__ = ["ModelsUnavailableError", "config_validator"]


class ModelsUnavailableError(RuntimeError):
    """No storage backend or no model configs are registered (a plugin is missing)."""


def config_validator(registry: FrozenRegistry) -> ConfigValidator:
    """A validator over the registry's model config union; it raises :class:`ModelsUnavailableError` when empty."""

    def validate(data: Mapping[str, Any]) -> ModelConfigBase:
        adapter = registry.model_config_adapter
        if adapter is None:
            raise ModelsUnavailableError(
                "no model config classes are registered: is the invoke-sd-probers plugin installed?"
            )
        config: ModelConfigBase = adapter.validate_python(dict(data))
        return config

    return validate
