"""``download_concurrency`` bounds installs and nodes' downloads (``download_and_cache_model``) together.

A real HTTP server on 127.0.0.1 holds one transfer open (``/held/<name>``) until the test lets it go, so the one
slot of ``download_concurrency=1`` is taken by a known download while the other kind asks for one.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from invoke_sdk.cancellation import InvocationCanceledError

from invoke_host.host import Host
from invoke_host.model_cache import ModelsService
from invoke_host.models.download_slots import DownloadSlots
from invoke_host.models.jobs import InstallStatus
from tests.models import model_files as mf
from tests.models.conftest import make_host
from tests.models.servers import ModelServer
from tests.waiting import async_wait_until


def _gets(server: ModelServer, path: str) -> int:
    return sum(1 for method, seen, _ in server.requests if method == "GET" and seen == path)


def _node_models(host: Host) -> ModelsService:
    models = host.node_services.models
    assert isinstance(models, ModelsService)
    return models


async def _started(root: Path) -> tuple[Host, DownloadSlots]:
    host = make_host(root, download_concurrency=1)
    await host.start()
    return host, host.models.download_slots


async def test_a_node_download_waits_while_an_install_holds_the_last_slot(
    server: ModelServer, tmp_path: Path
) -> None:
    vae = server.add_file(mf.write_vae(tmp_path / "vae.safetensors"))
    server.files["hed.pth"] = b"weights" * 100
    host, slots = await _started(tmp_path / "root")
    try:
        install = host.models.installer.import_model(f"{server.url}/held/{vae}")
        await async_wait_until(lambda: _gets(server, f"/held/{vae}") == 1, "the install's download to begin")
        assert slots.running == 1
        fetched = asyncio.ensure_future(
            asyncio.to_thread(_node_models(host).download_and_cache_model, f"{server.url}/files/hed.pth")
        )
        await async_wait_until(lambda: slots.waiting == 1, "the node's download to wait for the slot")
        assert _gets(server, "/files/hed.pth") == 0 and not fetched.done()
        server.release.set()
        path = await asyncio.wait_for(fetched, 30)
        job = await host.models.installer.wait(install.id)
    finally:
        await host.stop()
    assert job.status is InstallStatus.Completed, job.error
    assert path.read_bytes() == b"weights" * 100 and _gets(server, "/files/hed.pth") == 1
    assert (slots.running, slots.waiting) == (0, 0)


async def test_an_install_waits_while_a_node_download_holds_the_last_slot(server: ModelServer, tmp_path: Path) -> None:
    vae = server.add_file(mf.write_vae(tmp_path / "vae.safetensors"))
    server.files["hed.pth"] = b"weights" * 100
    host, slots = await _started(tmp_path / "root")
    try:
        fetched = asyncio.ensure_future(
            asyncio.to_thread(_node_models(host).download_and_cache_model, f"{server.url}/held/hed.pth")
        )
        await async_wait_until(lambda: _gets(server, "/held/hed.pth") == 1, "the node's download to begin")
        install = host.models.installer.import_model(f"{server.url}/files/{vae}")
        await async_wait_until(lambda: slots.waiting == 1, "the install's download to wait for the slot")
        assert _gets(server, f"/files/{vae}") == 0
        assert host.models.installer.jobs[install.id].status is not InstallStatus.Downloading
        server.release.set()
        path = await asyncio.wait_for(fetched, 30)
        job = await host.models.installer.wait(install.id)
    finally:
        await host.stop()
    assert job.status is InstallStatus.Completed, job.error
    assert path.read_bytes() == b"weights" * 100
    assert (slots.running, slots.waiting) == (0, 0)


async def test_a_canceled_run_leaves_the_wait_for_a_slot_and_takes_none(server: ModelServer, tmp_path: Path) -> None:
    server.files["a.bin"], server.files["b.bin"] = b"a" * 64, b"b" * 64
    host, slots = await _started(tmp_path / "root")
    try:
        holder = asyncio.ensure_future(
            asyncio.to_thread(_node_models(host).download_and_cache_model, f"{server.url}/held/a.bin")
        )
        await async_wait_until(lambda: _gets(server, "/held/a.bin") == 1, "the first download to begin")
        cancel = threading.Event()
        run = _node_models(host).for_run(cancel, lambda *args: None)
        waiting = asyncio.ensure_future(asyncio.to_thread(run.download_and_cache_model, f"{server.url}/files/b.bin"))
        await async_wait_until(lambda: slots.waiting == 1, "the second download to wait for the slot")
        cancel.set()
        with pytest.raises(InvocationCanceledError, match="canceled"):
            await asyncio.wait_for(waiting, 30)
        assert (slots.running, slots.waiting) == (1, 0)
        server.release.set()
        await asyncio.wait_for(holder, 30)
        run.close()
    finally:
        await host.stop()
    assert _gets(server, "/files/b.bin") == 0
    assert (slots.running, slots.waiting) == (0, 0)


async def test_a_canceled_install_leaves_the_wait_for_a_slot(server: ModelServer, tmp_path: Path) -> None:
    server.files["a.bin"] = b"a" * 64
    vae = server.add_file(mf.write_vae(tmp_path / "vae.safetensors"))
    host, slots = await _started(tmp_path / "root")
    try:
        holder = asyncio.ensure_future(
            asyncio.to_thread(_node_models(host).download_and_cache_model, f"{server.url}/held/a.bin")
        )
        await async_wait_until(lambda: _gets(server, "/held/a.bin") == 1, "the node's download to begin")
        install = host.models.installer.import_model(f"{server.url}/files/{vae}")
        await async_wait_until(lambda: slots.waiting == 1, "the install to wait for the slot")
        host.models.installer.cancel_job(install.id)
        job = await host.models.installer.wait(install.id)
        assert job.status is InstallStatus.Cancelled and (slots.running, slots.waiting) == (1, 0)
        server.release.set()
        await asyncio.wait_for(holder, 30)
    finally:
        await host.stop()
    assert _gets(server, f"/files/{vae}") == 0
    assert (slots.running, slots.waiting) == (0, 0)
