"""Downloading one URL: resume in all its shapes, answers that are not a model file, and the credential and
proxy behaviour that must stay as it is (the threat tests are in tests/security/test_credentials.py,
test_download_ssrf.py and test_download_limits.py). Real servers on 127.0.0.1 throughout."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from invoke_host.models.address_policy import AddressPolicy
from invoke_host.models.download_limits import DownloadLimits
from invoke_host.models.jobs import InstallJob, InstallStatus
from invoke_host.models.manager import ModelManager
from invoke_host.models.url_download import DownloadError, download_url, policy_client
from tests.models import model_files as mf
from tests.models.conftest import make_host
from tests.models.servers import ModelServer

TOKEN = "hf_s3cr3t-t0ken-value"

LOOPBACK_ONLY = AddressPolicy(allow_loopback=True)


@pytest.fixture
def origin_a() -> Iterator[ModelServer]:
    with ModelServer() as srv:
        srv.token = TOKEN
        srv.files["m.bin"] = b"model-bytes" * 100
        yield srv


async def _install(manager: ModelManager, source: str) -> InstallJob:
    return await manager.installer.wait(manager.installer.import_model(source, access_token=TOKEN).id)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_proxies_from_the_environment_are_not_used(
    origin_a: ModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would be the peer, and the policy would judge the proxy instead of the target.
    dead = f"http://127.0.0.1:{_closed_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    path = await download_url(f"{origin_a.url}/files/m.bin", tmp_path, policy=LOOPBACK_ONLY)
    assert path.read_bytes() == origin_a.files["m.bin"]


async def test_the_token_follows_a_redirect_within_its_origin(tmp_path: Path, origin_a: ModelServer) -> None:
    name = origin_a.add_file(mf.write_vae(tmp_path / "vae.safetensors"))
    host = make_host(tmp_path / "root")
    await host.start()
    try:
        job = await _install(host.models, f"{origin_a.url}/goto?to={quote(f'/private/{name}')}")
    finally:
        await host.stop()
    assert job.status is InstallStatus.Completed, job.error
    assert origin_a.authorizations() == [("/goto", f"Bearer {TOKEN}"), (f"/private/{name}", f"Bearer {TOKEN}")]


async def test_a_refused_token_is_not_repeated_in_the_error(tmp_path: Path, origin_a: ModelServer) -> None:
    name = origin_a.add_file(mf.write_vae(tmp_path / "vae.safetensors"))
    origin_a.token = "the-right-one"
    host = make_host(tmp_path / "root")
    await host.start()
    try:
        job = await _install(host.models, f"{origin_a.url}/private/{name}")
    finally:
        await host.stop()
    assert job.status is InstallStatus.Error and job.error == f"{origin_a.url}/private/{name} answered 401 Unauthorized"
    assert TOKEN not in job.model_dump_json()


async def test_a_hugging_face_token_reaches_the_hub(
    tmp_path: Path, origin_a: ModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", origin_a.url)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    origin_a.repos["org/vae"] = {
        "diffusion_pytorch_model.safetensors": mf.write_vae(tmp_path / "v.safetensors").read_bytes()
    }
    host = make_host(tmp_path / "root")
    await host.start()
    try:
        job = await _install(host.models, "org/vae")
    finally:
        await host.stop()
    assert job.status is InstallStatus.Completed, job.error
    repo_requests = [(p, a) for p, a in origin_a.authorizations() if p.startswith(("/api/models/", "/org/vae/"))]
    assert len(repo_requests) >= 2 and {auth for _, auth in repo_requests} == {f"Bearer {TOKEN}"}
    assert TOKEN not in job.model_dump_json()


BODY = bytes(range(256)) * 40  # 10,240 bytes; a first answer that breaks off keeps 3,413


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as srv:
        srv.files["m.bin"] = BODY
        yield srv


def _ranges(server: ModelServer) -> list[str | None]:
    return [r for _, _, r in server.requests]


async def test_a_url_keeps_its_file_name_and_asks_for_the_raw_bytes(server: ModelServer, tmp_path: Path) -> None:
    path = await download_url(f"{server.url}/files/m.bin", tmp_path, policy=LOOPBACK_ONLY, headers={"X-Test": "1"})
    assert path == tmp_path / "m.bin" and path.read_bytes() == BODY
    headers = server.seen[-1][1]
    assert (headers["accept-encoding"], headers["x-test"]) == ("identity", "1")


def test_the_client_follows_redirects_waits_the_stall_timeout_and_ignores_the_environment() -> None:
    client = policy_client(LOOPBACK_ONLY, DownloadLimits(stall_timeout_s=7))
    assert (client.follow_redirects, client.max_redirects, client.trust_env) == (True, 10, False)
    assert client.timeout == httpx.Timeout(7)


async def test_a_transfer_that_always_breaks_off_is_tried_four_times(server: ModelServer, tmp_path: Path) -> None:
    with pytest.raises(
        DownloadError, match=rf"^the transfer from {server.url}/always-breaks/m.bin broke off after 4000 bytes \("
    ):
        await download_url(f"{server.url}/always-breaks/m.bin", tmp_path, policy=LOOPBACK_ONLY)
    assert _ranges(server) == [None, "bytes=1000-", "bytes=2000-", "bytes=3000-"]
    assert list(tmp_path.iterdir()) == []


async def test_a_server_that_ignores_the_range_is_read_again_from_the_start(
    server: ModelServer, tmp_path: Path
) -> None:
    path = await download_url(f"{server.url}/ignores-range/m.bin", tmp_path, policy=LOOPBACK_ONLY)
    assert path.read_bytes() == BODY
    assert _ranges(server) == [None, "bytes=3413-"]


async def test_a_file_can_come_in_ranged_pieces(server: ModelServer, tmp_path: Path) -> None:
    server.piece = 4000
    seen: list[tuple[int, int | None]] = []
    path = await download_url(
        f"{server.url}/pieces/m.bin", tmp_path, policy=LOOPBACK_ONLY, on_progress=lambda n, t: seen.append((n, t))
    )
    assert path.read_bytes() == BODY
    assert _ranges(server) == [None, "bytes=3413-", "bytes=7413-"]
    assert seen[-1] == (len(BODY), len(BODY))


@pytest.mark.parametrize(
    ("piece", "accept_ranges", "kept", "ranges"),
    [
        (1000, True, 6413, [None, "bytes=3413-", "bytes=4413-", "bytes=5413-"]),  # four tries are not enough
        (4000, False, 7413, [None, "bytes=3413-"]),  # a piece that cannot be resumed
    ],
)
async def test_pieces_that_do_not_add_up_leave_the_file_incomplete(
    server: ModelServer, tmp_path: Path, piece: int, accept_ranges: bool, kept: int, ranges: list[str | None]
) -> None:
    server.piece, server.piece_accept_ranges = piece, accept_ranges
    with pytest.raises(DownloadError) as failed:
        await download_url(f"{server.url}/pieces/m.bin", tmp_path, policy=LOOPBACK_ONLY)
    assert str(failed.value) == f"the transfer from {server.url}/pieces/m.bin is incomplete: {kept} of 10240 bytes"
    assert _ranges(server) == ranges
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("route", "content_range"), [("badrange", "'bytes 0-10239/10240'"), ("norange", "None")])
async def test_a_resume_must_continue_where_the_file_stops(
    server: ModelServer, tmp_path: Path, route: str, content_range: str
) -> None:
    with pytest.raises(DownloadError) as failed:
        await download_url(f"{server.url}/{route}/m.bin", tmp_path, policy=LOOPBACK_ONLY)
    assert str(failed.value) == (
        f"{server.url}/{route}/m.bin answered the resume from byte 3413 with the wrong range ({content_range})"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("empty", "{url}/empty returned an empty file"),
        ("xhtml", "{url}/xhtml returned an HTML page, not a model file (a login or error page?)"),
        ("missing", "{url}/missing answered 404 Not Found"),
    ],
)
async def test_answers_that_are_not_a_model_file(server: ModelServer, tmp_path: Path, route: str, message: str) -> None:
    with pytest.raises(DownloadError) as failed:
        await download_url(f"{server.url}/{route}", tmp_path, policy=LOOPBACK_ONLY)
    assert str(failed.value) == message.format(url=server.url)
    assert list(tmp_path.iterdir()) == []


async def test_a_server_that_is_not_there(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/m.bin"
    with pytest.raises(DownloadError, match=rf"^could not reach {re.escape(url)}: could not connect to 127\.0\.0\.1"):
        await download_url(url, tmp_path, policy=LOOPBACK_ONLY)
