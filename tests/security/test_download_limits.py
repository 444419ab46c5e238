"""Resource exhaustion through model downloads: size cap, total deadline and stall timeout.

Real servers on 127.0.0.1 that declare absurd sizes, send endless bodies, trickle or go silent; small
settings keep every test short. Each refusal names the setting, and nothing partial is left.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError

from invoke_host.config import HostConfig
from invoke_host.models.address_policy import AddressPolicy
from invoke_host.models.download_limits import DownloadLimitError, DownloadLimits
from invoke_host.models.jobs import InstallStatus
from invoke_host.models.url_download import DownloadError, download_url
from tests.models import model_files as mf
from tests.models.conftest import make_host
from tests.models.servers import ModelServer

POLICY = AddressPolicy(allow_loopback=True)
TEN_TB = 10 * 1024**4
BODY = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def server() -> ModelServer:
    with ModelServer() as srv:
        srv.files["m.bin"] = BODY
        yield srv  # type: ignore[misc]


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


async def test_a_declared_size_over_the_cap_is_refused_before_reading(server: ModelServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadLimitError) as refused:
        await download_url(f"{server.url}/declared/{TEN_TB}", tmp_path, policy=POLICY)
    assert str(refused.value) == (
        f"the file at {server.url}/declared/{TEN_TB} is {TEN_TB} bytes, more than download_max_bytes "
        f"(INVOKE_HOST_DOWNLOAD_MAX_BYTES={100 * 1024**3}); nothing was kept"
    )
    assert _files(tmp_path) == []  # not one byte of the body was written


@pytest.mark.parametrize(("cap", "fits"), [(len(BODY), True), (len(BODY) - 1, False)])
async def test_the_cap_is_inclusive_for_a_declared_size(
    server: ModelServer, tmp_path: Path, cap: int, fits: bool
) -> None:
    limits = DownloadLimits(max_bytes=cap)
    if fits:
        path = await download_url(f"{server.url}/files/m.bin", tmp_path, policy=POLICY, limits=limits)
        assert path.read_bytes() == BODY
    else:
        with pytest.raises(DownloadLimitError, match=f"is {len(BODY)} bytes, more than download_max_bytes"):
            await download_url(f"{server.url}/files/m.bin", tmp_path, policy=POLICY, limits=limits)
        assert _files(tmp_path) == []


@pytest.mark.parametrize(("size", "fits"), [(8192, True), (8193, False), (10 * 1024 * 1024, False)])
async def test_a_body_without_a_length_is_cut_off_at_the_cap(
    server: ModelServer, tmp_path: Path, size: int, fits: bool
) -> None:
    limits = DownloadLimits(max_bytes=8192)
    url = f"{server.url}/endless/{size}"
    if fits:
        path = await download_url(url, tmp_path, policy=POLICY, limits=limits)
        assert path.stat().st_size == size
        return
    with pytest.raises(DownloadLimitError) as refused:
        await download_url(url, tmp_path, policy=POLICY, limits=limits)
    assert str(refused.value) == (
        f"{url} sent more than download_max_bytes (INVOKE_HOST_DOWNLOAD_MAX_BYTES=8192) bytes; "
        "the transfer was stopped and nothing was kept"
    )
    assert _files(tmp_path) == []  # the part file is gone


@pytest.mark.parametrize("total", [str(TEN_TB), "*"])
async def test_a_resume_is_held_to_the_cap_too(server: ModelServer, tmp_path: Path, total: str) -> None:
    # /ranged breaks off after a third; the 206 that resumes it gives the full size again (or "*": unknown).
    server.range_total = total
    url = f"{server.url}/ranged/m.bin"
    if total == "*":  # the size the first answer declared still holds
        seen: list[tuple[int, int | None]] = []
        path = await download_url(url, tmp_path, policy=POLICY, on_progress=lambda n, t: seen.append((n, t)))
        assert path.read_bytes() == BODY and seen[-1] == (len(BODY), len(BODY))
        return
    with pytest.raises(DownloadLimitError, match=f"the file at {url} is {TEN_TB} bytes, more than download_max_bytes"):
        await download_url(url, tmp_path, policy=POLICY)
    assert _files(tmp_path) == []


async def test_a_resume_from_the_wrong_offset_is_refused(server: ModelServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"answered the resume from byte 3413 with the wrong range \('bytes 0-"):
        await download_url(f"{server.url}/badrange/m.bin", tmp_path, policy=POLICY)
    assert _files(tmp_path) == []


async def test_a_silent_server_trips_the_stall_timeout(server: ModelServer, tmp_path: Path) -> None:
    limits = DownloadLimits(stall_timeout_s=0.2)
    with pytest.raises(DownloadLimitError) as refused:
        await download_url(f"{server.url}/stall/m.bin", tmp_path, policy=POLICY, limits=limits)
    assert str(refused.value) == (
        f"{server.url}/stall/m.bin sent nothing for download_stall_timeout_s "
        "(INVOKE_HOST_DOWNLOAD_STALL_TIMEOUT_S=0.2) seconds; nothing was kept"
    )
    assert _files(tmp_path) == []


async def test_a_server_that_never_answers_trips_the_stall_timeout(server: ModelServer, tmp_path: Path) -> None:
    limits = DownloadLimits(stall_timeout_s=0.2)
    with pytest.raises(DownloadLimitError) as refused:
        await download_url(f"{server.url}/silent", tmp_path, policy=POLICY, limits=limits)
    assert str(refused.value) == (
        f"{server.url}/silent sent nothing for download_stall_timeout_s "
        "(INVOKE_HOST_DOWNLOAD_STALL_TIMEOUT_S=0.2) seconds; nothing was kept"
    )


async def test_a_stall_on_a_resumable_server_resumes(server: ModelServer, tmp_path: Path) -> None:
    limits = DownloadLimits(stall_timeout_s=0.2)
    path = await download_url(f"{server.url}/ranged-stall/m.bin", tmp_path, policy=POLICY, limits=limits)
    assert path.read_bytes() == BODY
    assert [r[2] for r in server.requests] == [None, "bytes=16-"]


async def test_a_trickle_trips_the_total_deadline(server: ModelServer, tmp_path: Path) -> None:
    # A byte every 20 ms never stalls (1 s), but 10 KB that way takes 200 s: the deadline ends it.
    limits = DownloadLimits(timeout_s=0.3, stall_timeout_s=1)
    with pytest.raises(DownloadLimitError) as refused:
        await download_url(f"{server.url}/trickle/m.bin", tmp_path, policy=POLICY, limits=limits)
    assert str(refused.value) == (
        f"the download from {server.url}/trickle/m.bin did not finish within download_timeout_s "
        "(INVOKE_HOST_DOWNLOAD_TIMEOUT_S=0.3) seconds; nothing was kept"
    )
    assert _files(tmp_path) == []


async def test_slow_servers_cannot_hold_every_download_slot(server: ModelServer, tmp_path: Path) -> None:
    vae = server.add_file(mf.write_vae(tmp_path / "vae.safetensors"))
    host = make_host(tmp_path / "root", download_concurrency=1, download_timeout_s=0.3, download_stall_timeout_s=1)
    await host.start()
    try:
        installer = host.models.installer
        slow = installer.import_model(f"{server.url}/trickle/m.bin")
        fast = installer.import_model(f"{server.url}/files/{vae}")
        slow_done, fast_done = await asyncio.gather(installer.wait(slow.id), installer.wait(fast.id))
        assert slow_done.status is InstallStatus.Error and slow_done.error_type == "DownloadLimitError"
        assert "download_timeout_s (INVOKE_HOST_DOWNLOAD_TIMEOUT_S=0.3)" in (slow_done.error or "")
        assert fast_done.status is InstallStatus.Completed, fast_done.error
        assert [m.source for m in await host.models.store.search()] == [f"{server.url}/files/{vae}"]
        assert not (host.models.models_dir / ".tmp").exists() or _files(host.models.models_dir / ".tmp") == []
    finally:
        await host.stop()


async def test_a_declared_ten_terabytes_fails_the_install_cleanly(server: ModelServer, tmp_path: Path) -> None:
    host = make_host(tmp_path / "root")
    await host.start()
    try:
        job = await host.models.installer.wait(host.models.installer.import_model(f"{server.url}/declared/{TEN_TB}").id)
        assert job.status is InstallStatus.Error and job.error_type == "DownloadLimitError"
        assert "INVOKE_HOST_DOWNLOAD_MAX_BYTES" in (job.error or "")
        assert _files(host.models.models_dir) == [] and await host.models.store.search() == []
    finally:
        await host.stop()


# --- Hugging Face installs -------------------------------------------------------------------------------


@pytest.fixture
def hub(server: ModelServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModelServer:
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    server.repos["org/big"] = {
        "model.safetensors": mf.write_vae(tmp_path / "hub-vae.safetensors").read_bytes(),
        "config.json": b"{}",
    }
    return server


async def _hf_install(tmp_path: Path, **config: object):  # type: ignore[no-untyped-def]
    host = make_host(tmp_path / "root", **config)
    await host.start()
    try:
        job = await host.models.installer.wait(host.models.installer.import_model("org/big").id)
        leftovers = _files(host.models.models_dir)
        assert await host.models.store.search() == []
    finally:
        await host.stop()
    assert leftovers == []
    return job


async def test_hugging_face_listed_sizes_over_the_cap_are_refused_before_downloading(
    hub: ModelServer, tmp_path: Path
) -> None:
    total = sum(len(b) for b in hub.repos["org/big"].values())
    job = await _hf_install(tmp_path, download_max_bytes=total - 1)
    assert job.status is InstallStatus.Error and job.error_type == "DownloadLimitError"
    assert job.error == (
        f"the Hugging Face download of 'org/big' (2 files) is {total} bytes, more than download_max_bytes "
        f"(INVOKE_HOST_DOWNLOAD_MAX_BYTES={total - 1}); nothing was kept"
    )
    assert [p for _, p, _ in hub.requests if "/resolve/" in p] == []


async def test_hugging_face_bytes_beyond_the_listed_sizes_still_count(hub: ModelServer, tmp_path: Path) -> None:
    hub.listed_sizes = {"model.safetensors": 10, "config.json": 2}  # the hub lies; the bytes tell
    job = await _hf_install(tmp_path, download_max_bytes=100)
    assert job.status is InstallStatus.Error and job.error_type == "DownloadLimitError"
    assert job.error == (
        "the Hugging Face download of 'org/big' sent more than download_max_bytes "
        "(INVOKE_HOST_DOWNLOAD_MAX_BYTES=100) bytes; the transfer was stopped and nothing was kept"
    )


async def test_hugging_face_downloads_keep_the_deadline(hub: ModelServer, tmp_path: Path) -> None:
    hub.slow = {"config.json"}  # 2 bytes, 40 ms at least: past a 10 ms deadline when it reports
    hub.trickle_interval = 0.02
    job = await _hf_install(tmp_path, download_timeout_s=0.01)
    assert job.status is InstallStatus.Error and job.error_type == "DownloadLimitError"
    assert job.error == (
        "the Hugging Face download of 'org/big' did not finish within download_timeout_s "
        "(INVOKE_HOST_DOWNLOAD_TIMEOUT_S=0.01) seconds; nothing was kept"
    )


# --- the settings --------------------------------------------------------------------------------------------


def test_the_limits_are_settings_with_generous_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = HostConfig()
    assert (defaults.download_max_bytes, defaults.download_timeout_s, defaults.download_stall_timeout_s) == (
        100 * 1024**3,
        6 * 3600,
        60,
    )
    assert DownloadLimits() == DownloadLimits(
        defaults.download_max_bytes, defaults.download_timeout_s, defaults.download_stall_timeout_s
    )
    monkeypatch.setenv("INVOKE_HOST_DOWNLOAD_MAX_BYTES", "1000")
    monkeypatch.setenv("INVOKE_HOST_DOWNLOAD_TIMEOUT_S", "2.5")
    monkeypatch.setenv("INVOKE_HOST_DOWNLOAD_STALL_TIMEOUT_S", "0.5")
    config = HostConfig()
    assert (config.download_max_bytes, config.download_timeout_s, config.download_stall_timeout_s) == (1000, 2.5, 0.5)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("download_max_bytes", 0, "greater_than_equal"),
        ("download_timeout_s", 0, "greater_than"),
        ("download_stall_timeout_s", -1, "greater_than"),
    ],
)
def test_limits_must_be_positive(field: str, value: float, error: str) -> None:
    with pytest.raises(ValidationError) as refused:
        HostConfig(**{field: value})  # type: ignore[arg-type]
    assert [(e["loc"], e["type"]) for e in refused.value.errors()] == [((field,), error)]
