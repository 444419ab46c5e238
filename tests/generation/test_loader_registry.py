"""``register_model_loaders``: loaders are keyed by type/format, conflicts and non-loaders are refused."""

from __future__ import annotations

import types
from typing import Any

from invoke_sdk import hookimpl

from invoke_host.host import build_host


class _Loader:
    def __init__(self, model_type: str, model_format: str) -> None:
        self.model_type, self.model_format = model_type, model_format

    def load(self, config: Any, submodel: str | None, *, dtype: str) -> Any:
        return None

    def device_available(self, device: str) -> bool:
        return False


def _plugin(name: str, *loaders: Any) -> types.ModuleType:
    module = types.ModuleType(name)

    @hookimpl
    def register_model_loaders(register: Any) -> None:
        for loader in loaders:
            register(loader)

    module.register_model_loaders = register_model_loaders  # type: ignore[attr-defined]
    return module


def test_loaders_are_keyed_by_type_and_format_and_the_first_plugin_keeps_a_key() -> None:
    first = _Loader("main", "diffusers")
    host = build_host(
        plugins=[
            _plugin("first", first, _Loader("vae", "checkpoint")),
            _plugin("second", _Loader("main", "diffusers"), object(), _Loader),
        ],
        entry_points=False,
    )
    loaders = host.registry.kind("model_loaders")
    assert sorted(loaders) == ["main/diffusers", "vae/checkpoint"]
    assert loaders["main/diffusers"].value is first
    second = next(r for r in host.plugins.records if r.name == "second")
    assert any("'main/diffusers'" in msg and "registered it first" in msg for msg in second.refused)
    assert sum("is not a model loader" in msg for msg in second.refused) == 2
