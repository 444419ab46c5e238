"""``register_model_loaders``: loaders are keyed by type/format, conflicts and non-loaders are refused."""

from __future__ import annotations

import asyncio
import time
import types
from pathlib import Path
from typing import Any

import invoke_core_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_sqlite_storage.plugin
from invoke_sdk import hookimpl

from invoke_host.config import HostConfig
from invoke_host.host import build_host
from invoke_host.queue import Batch

STORAGE_PLUGINS = [invoke_sqlite_storage.plugin, invoke_local_file_storage.plugin, invoke_core_nodes.plugin]


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


class _ConfiguredLoader(_Loader):
    def __init__(self) -> None:
        super().__init__("main", "diffusers")
        self.configured: list[Any] = []

    def configure(self, settings: Any) -> None:
        self.configured.append(settings)


async def test_a_loader_is_configured_once_per_host_not_per_device_or_run(tmp_path: Path) -> None:
    loader = _ConfiguredLoader()
    config = HostConfig(root=tmp_path, devices="cpu,cpu", worker_name="box")
    host = build_host(config, [*STORAGE_PLUGINS, _plugin("configured", loader)], entry_points=False)
    # Two devices: two node services over the one set of loaders.
    assert len(host.processors) == 2 and host.queue is not None
    assert loader.configured == [config]
    await host.start()
    try:
        add = {"nodes": {"add": {"id": "add", "type": "add", "a": 2, "b": 3}}, "edges": []}
        ids = [i for _ in range(3) for i in (await host.queue.enqueue_batch("default", Batch(graph=add))).item_ids]
        items: list[Any] = []

        async def all_done() -> bool:
            items[:] = [await host.queue.get(i) for i in ids]  # type: ignore[union-attr]
            return all(item is not None and item.status in ("completed", "failed") for item in items)

        deadline = time.monotonic() + 30
        while not await all_done():
            assert time.monotonic() < deadline, f"items {ids} did not finish: {items}"
            await asyncio.sleep(0.01)
        assert [item.status for item in items] == ["completed"] * 3
    finally:
        await host.stop()
    assert loader.configured == [config]
