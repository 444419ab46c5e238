from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from invoke_sd_probers import plugin as probers_plugin
from invoke_sqlite_storage import plugin as storage_plugin

from invoke_host.config import HostConfig
from invoke_host.host import Host, build_host
from invoke_host.models.manager import ModelManager
from tests.models.servers import ModelServer


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as srv:
        yield srv


def make_host(root: Path, **config: object) -> Host:
    config.setdefault("download_allow_loopback", True)  # tests allow loopback explicitly
    cfg = HostConfig(root=root, **config)  # type: ignore[arg-type]
    return build_host(cfg, [probers_plugin, storage_plugin], entry_points=False)


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[ModelManager]:
    host = make_host(tmp_path / "root")
    await host.start()
    try:
        yield host.models
    finally:
        await host.stop()
