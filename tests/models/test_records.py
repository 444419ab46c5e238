from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from invoke_postgres_storage import plugin as postgres_plugin
from invoke_sd_probers import plugin as probers_plugin
from invoke_sdk.models import BaseModelType, ModelType
from invoke_sdk.models.records import DuplicateModelError, UnknownModelKeyError
from invoke_sqlite_storage import plugin as sqlite_plugin
from pydantic import ValidationError

from invoke_host.config import HostConfig
from invoke_host.host import build_host
from invoke_host.models.manager import ModelManager
from tests.storage_backends import BACKENDS


@pytest.fixture(params=BACKENDS)
async def manager(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ModelManager]:
    """The model manager over each backend's record store; PostgreSQL chosen the way a user does, by database_url."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    config = HostConfig(root=tmp_path / "root", database_url=url, model_sync_on_start=False)
    host = build_host(config, [probers_plugin, sqlite_plugin, postgres_plugin], entry_points=False)
    assert host.storage is not None and host.storage.name == request.param  # type: ignore[attr-defined]
    await host.start()
    try:
        yield host.models
    finally:
        await host.stop()


def lora(key: str, path: str, name: str = "a", base: str = "sd-1") -> dict[str, object]:
    return {
        "key": key,
        "hash": f"blake3:{key}",
        "name": name,
        "base": base,
        "type": "lora",
        "format": "lycoris",
        "path": path,
        "source": path,
        "source_type": "path",
    }


async def test_add_get_search_update_delete(manager: ModelManager) -> None:
    store = manager.store
    await store.add(manager.validate(lora("k1", "/m/a.safetensors", "zeta")))
    await store.add(manager.validate(lora("k2", "/m/b.safetensors", "alpha", base="sdxl")))
    assert (await store.get("k1")).name == "zeta" and await store.exists("k2")
    assert [c.key for c in await store.search()] == ["k2", "k1"]  # by name
    assert [c.key for c in await store.search(base=BaseModelType.StableDiffusionXL, type=ModelType.LoRA)] == ["k2"]
    assert [c.key for c in await store.search_by_path("/m/a.safetensors")] == ["k1"]
    assert [c.key for c in await store.search_by_hash("blake3:k2")] == ["k2"]
    updated = await store.update("k1", {"description": "nice"})
    assert updated.description == "nice" and updated.name == "zeta"  # sparse: other fields kept
    with pytest.raises(ValidationError):
        await store.update("k1", {"base": "sd-9"})
    assert (await store.get("k1")).base is BaseModelType.StableDiffusion1  # nothing half-written
    await store.delete("k1")
    with pytest.raises(UnknownModelKeyError, match="k1"):
        await store.get("k1")
    with pytest.raises(UnknownModelKeyError):
        await store.delete("k1")


async def test_conflicts(manager: ModelManager) -> None:
    store = manager.store
    await store.add(manager.validate(lora("k1", "/m/a.safetensors")))
    with pytest.raises(DuplicateModelError, match="same content") as err:
        await store.add(manager.validate(lora("k1", "/m/other.safetensors")))
    assert err.value.existing == "k1"
    with pytest.raises(DuplicateModelError, match="already recorded at"):
        await store.add(manager.validate(lora("k2", "/m/a.safetensors")))


async def test_records_survive_restart(tmp_path: Path) -> None:
    from tests.models.conftest import make_host

    for round_ in range(2):
        host = make_host(tmp_path / "root", model_sync_on_start=False)
        await host.start()
        try:
            if round_ == 0:
                await host.models.store.add(host.models.validate(lora("k1", "/m/a.safetensors")))
            else:
                assert (await host.models.store.get("k1")).type is ModelType.LoRA
        finally:
            await host.stop()
    assert (tmp_path / "root" / "databases" / "invoke.db").is_file()  # one database for every store
