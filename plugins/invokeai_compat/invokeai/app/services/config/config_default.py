"""InvokeAI's app config, built from the host's config (``context.config.get()`` and ``get_config()``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["InvokeAIAppConfig", "get_config"]


class InvokeAIAppConfig:
    """The settings packs read: the root and the folders under it, plus any host setting by its name."""

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self._settings = dict(settings or {})
        self.root_path = Path(str(self._settings.get("root", "invoke-root"))).absolute()
        self.models_path = self.root_path / "models"
        self.outputs_path = self.root_path / "images"
        self.custom_nodes_path = self.root_path / "nodes"
        self.db_path = self.root_path / "databases"
        self.precision = "auto"
        self.device = "auto"

    def __getattr__(self, name: str) -> Any:
        try:
            return self._settings[name]
        except KeyError:
            raise AttributeError(f"InvokeAI's config has no setting {name!r} on Invoke Host") from None

    @property
    def models_dir(self) -> Path:
        return self.models_path

    @property
    def outputs_dir(self) -> Path:
        return self.outputs_path


def get_config() -> InvokeAIAppConfig:
    """The config of a host this process has not told us about: defaults, rooted at INVOKE_HOST_ROOT if set."""
    return InvokeAIAppConfig({"root": os.environ.get("INVOKE_HOST_ROOT", "invoke-root")})
