"""Install credentials: an ``access_token`` reaches the source it is for and nothing else.

Never a URL (query parameters and user:password@ land in access logs and in stored sources), never a
redirect target on another origin, never the job or the record the API returns, never a log line.
Two real servers on different ports are two origins.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from invoke_sd_probers import plugin as probers_plugin
from invoke_sqlite_storage import plugin as storage_plugin
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.models.jobs import InstallJob, InstallStatus
from invoke_host.models.manager import ModelManager
from tests.models import model_files as mf
from tests.models.conftest import make_host
from tests.models.servers import ModelServer

TOKEN = "hf_s3cr3t-t0ken-value"


@pytest.fixture
def origin_a() -> Iterator[ModelServer]:
    with ModelServer() as srv:
        srv.token = TOKEN
        yield srv


@pytest.fixture
def origin_b() -> Iterator[ModelServer]:
    with ModelServer() as srv:
        yield srv


async def _install(manager: ModelManager, source: str, token: str | None = TOKEN) -> InstallJob:
    job = manager.installer.import_model(source, access_token=token)
    return await manager.installer.wait(job.id)


async def test_the_token_is_dropped_on_a_redirect_to_another_origin(
    tmp_path: Path, origin_a: ModelServer, origin_b: ModelServer
) -> None:
    name = origin_b.add_file(mf.write_vae(tmp_path / "vae.safetensors"))
    host = make_host(tmp_path / "root")
    await host.start()
    try:
        job = await _install(host.models, f"{origin_a.url}/goto?to={quote(f'{origin_b.url}/files/{name}')}")
    finally:
        await host.stop()
    assert job.status is InstallStatus.Completed, job.error
    assert origin_a.authorizations() == [("/goto", f"Bearer {TOKEN}")]
    assert origin_b.authorizations() == [(f"/files/{name}", None)]


async def test_another_host_name_for_the_same_server_is_another_origin(tmp_path: Path, origin_a: ModelServer) -> None:
    name = origin_a.add_file(mf.write_vae(tmp_path / "vae.safetensors"))
    elsewhere = f"http://localhost:{origin_a.port}/files/{name}"
    host = make_host(tmp_path / "root")
    await host.start()
    try:
        job = await _install(host.models, f"{origin_a.url}/goto?to={quote(elsewhere)}")
    finally:
        await host.stop()
    assert job.status is InstallStatus.Completed, job.error
    assert origin_a.authorizations() == [("/goto", f"Bearer {TOKEN}"), (f"/files/{name}", None)]


# --- the API ---------------------------------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Any]]:
    config = HostConfig(root=tmp_path / "root", download_allow_loopback=True)
    with TestClient(create_app(config, [probers_plugin, storage_plugin], entry_points=False)) as test_client:
        yield test_client


def _finished(client: TestClient[Any], job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/v2/models/install/{job_id}").json()
        if job["status"] in {"completed", "error", "cancelled"}:
            return job
        time.sleep(0.02)
    raise AssertionError(f"install job {job_id} did not finish within 30 s")


def test_a_token_in_the_url_is_refused(client: TestClient[Any], origin_a: ModelServer) -> None:
    answer = client.post("/api/v2/models/install", params={"source": f"{origin_a.url}/x", "access_token": TOKEN})
    assert answer.status_code == 400
    assert answer.json()["detail"] == (
        "access_token is not accepted in the URL, where access logs keep it: send it in the JSON body, "
        'as {"access_token": "..."} next to any config overrides'
    )
    assert client.get("/api/v2/models/install").json() == []
    assert origin_a.seen == []


@pytest.mark.parametrize("source", ["http://user:pw@127.0.0.1/m.safetensors", "https://tok@example.com/m.bin"])
def test_credentials_in_the_source_url_are_refused(client: TestClient[Any], source: str) -> None:
    answer = client.post("/api/v2/models/install", params={"source": source})
    assert answer.status_code == 400
    assert "the source URL carries a user name or password" in answer.json()["detail"]
    assert client.get("/api/v2/models/install").json() == []


@pytest.mark.parametrize("bad", [5, "", "   ", ["x"], None])
def test_a_body_token_must_be_a_string(client: TestClient[Any], origin_a: ModelServer, bad: object) -> None:
    answer = client.post("/api/v2/models/install", params={"source": f"{origin_a.url}/x"}, json={"access_token": bad})
    if bad is None:  # JSON null: no token
        assert answer.status_code == 201
        return
    assert answer.status_code == 400 and answer.json()["detail"] == "access_token must be a non-empty string"


def test_a_body_token_is_used_and_never_returned_stored_or_logged(
    client: TestClient[Any], origin_a: ModelServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    name = origin_a.add_file(mf.write_vae(tmp_path / "vae.safetensors"))
    started = client.post(
        "/api/v2/models/install",
        params={"source": f"{origin_a.url}/private/{name}"},
        json={"access_token": TOKEN, "name": "Gated VAE"},
    )
    assert started.status_code == 201
    job = _finished(client, started.json()["id"])
    assert job["status"] == "completed", job
    assert origin_a.authorizations() == [(f"/private/{name}", f"Bearer {TOKEN}")]
    assert job["config_overrides"] == {"name": "Gated VAE"}
    record = client.get(f"/api/v2/models/i/{job['config_out']['key']}").json()
    assert record["name"] == "Gated VAE"
    shown = [started.json(), job, client.get("/api/v2/models/install").json(), record]
    shown.append(client.get("/api/v2/models/").json())
    for answer in shown:
        assert TOKEN not in json.dumps(answer)
    assert caplog.records and TOKEN not in caplog.text
