"""Install and download events arrive on the host's event bus, typed and in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from invoke_sd_probers import plugin as probers_plugin
from invoke_sdk import hookimpl
from invoke_sdk.events import CORE_EVENTS, BaseEvent
from invoke_sdk.hookspecs import RegisterEventSink
from invoke_sdk.models.install_events import (
    MODEL_INSTALL_EVENTS,
    ModelInstallCompleteEvent,
    ModelInstallDownloadProgressEvent,
    ModelInstallErrorEvent,
    ModelInstallHashingProgressEvent,
)
from invoke_sqlite_storage import plugin as storage_plugin

from invoke_host.config import HostConfig
from invoke_host.host import Host, build_host
from invoke_host.models.jobs import InstallStatus
from tests.models import model_files as mf
from tests.models.servers import ModelServer


class RecordingSink:
    name = "recording"

    def __init__(self) -> None:
        self.events: list[BaseEvent] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def deliver(self, event: BaseEvent) -> None:
        if event.event_name.startswith("model_install"):
            self.events.append(event)

    def names(self) -> list[str]:
        # Repeated progress events collapse into one name, so the order of the phases is easy to read.
        names: list[str] = []
        for event in self.events:
            if not names or names[-1] != event.event_name:
                names.append(event.event_name)
        return names


class SinkPlugin:
    def __init__(self) -> None:
        self.sink = RecordingSink()

    @hookimpl
    def register_event_sinks(self, register: RegisterEventSink) -> None:
        register(self.sink)


@pytest.fixture
async def host_and_sink(tmp_path: Path) -> AsyncIterator[tuple[Host, RecordingSink]]:
    plugin = SinkPlugin()
    config = HostConfig(root=tmp_path / "root", download_allow_loopback=True)
    host = build_host(config, [probers_plugin, storage_plugin, plugin], entry_points=False)
    await host.start()
    try:
        yield host, plugin.sink
    finally:
        await host.stop()


def test_install_events_are_core_events() -> None:
    assert set(MODEL_INSTALL_EVENTS) <= set(CORE_EVENTS)


async def test_url_install_emits_started_progress_complete_in_order(
    host_and_sink: tuple[Host, RecordingSink], server: ModelServer, tmp_path: Path
) -> None:
    host, sink = host_and_sink
    name = server.add_file(mf.write_main_checkpoint(tmp_path / "big.safetensors", "sdxl", pad_bytes=20 << 20))
    size = len(server.files[name])
    job = host.models.installer.import_model(f"{server.url}/files/{name}")
    job = await host.models.installer.wait(job.id)
    assert job.status is InstallStatus.Completed, job.error

    assert sink.names() == [
        "model_install_started",
        "model_install_download_started",
        "model_install_download_progress",
        "model_install_downloads_complete",
        "model_install_hashing_progress",
        "model_install_complete",
    ]
    assert all(e.id == job.id and e.source == job.source for e in sink.events)  # type: ignore[attr-defined]
    progress = [e for e in sink.events if isinstance(e, ModelInstallDownloadProgressEvent)]
    percents = [e.bytes * 100 // e.total_bytes for e in progress]
    assert percents == sorted(set(percents)) and 10 < len(progress) <= 101  # many chunks, at most one per percent
    assert progress[-1].bytes == progress[-1].total_bytes == size
    hashing = [e for e in sink.events if isinstance(e, ModelInstallHashingProgressEvent)]
    assert hashing[-1].bytes == hashing[-1].total_bytes == size
    complete = sink.events[-1]
    assert isinstance(complete, ModelInstallCompleteEvent) and complete.key == job.config_out["key"]  # type: ignore[index]


async def test_failed_install_emits_error(
    host_and_sink: tuple[Host, RecordingSink], server: ModelServer
) -> None:
    host, sink = host_and_sink
    job = host.models.installer.import_model(f"{server.url}/missing")
    job = await host.models.installer.wait(job.id)
    assert job.status is InstallStatus.Error
    assert sink.names()[0] == "model_install_started" and sink.names()[-1] == "model_install_error"
    error = sink.events[-1]
    assert isinstance(error, ModelInstallErrorEvent) and "404" in error.error and error.error_type == job.error_type
    assert "model_install_complete" not in sink.names()


async def test_cancelled_install_emits_cancelled(
    host_and_sink: tuple[Host, RecordingSink], server: ModelServer, tmp_path: Path
) -> None:
    host, sink = host_and_sink
    server.add_file(mf.write_vae(tmp_path / "v.safetensors"))
    job = host.models.installer.import_model(f"{server.url}/files/v.safetensors")
    host.models.installer.cancel_job(job.id)
    await host.models.installer.wait(job.id)
    assert sink.names()[-1] == "model_install_cancelled"
    assert "model_install_complete" not in sink.names()


async def test_local_install_hashes_with_progress_and_no_download_events(
    host_and_sink: tuple[Host, RecordingSink], tmp_path: Path
) -> None:
    host, sink = host_and_sink
    folder = mf.write_diffusers_main(tmp_path / "main", "sd-1")
    job = host.models.installer.import_model(str(folder), inplace=True)
    job = await host.models.installer.wait(job.id)
    assert job.status is InstallStatus.Completed, job.error
    assert sink.names() == ["model_install_started", "model_install_hashing_progress", "model_install_complete"]
