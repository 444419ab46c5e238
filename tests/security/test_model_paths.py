"""A model record names that model's own file or folder, and a delete removes only files the host placed.

Every way a record's path is set (install by copy, in place, from a URL; PATCH; install overrides; records
made before ownership was tracked) and every way files are removed (DELETE, a failed install) is driven
through the real API with real model files.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from invoke_sd_probers import plugin as probers_plugin
from invoke_sqlite_storage import plugin as storage_plugin
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.models import model_files as mf
from tests.models.conftest import make_host
from tests.models.servers import ModelServer

LORA_OVERRIDES = {"type": "lora", "format": "lycoris", "base": "sd-1"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def models(root: Path) -> Path:
    return root / "models"


@pytest.fixture
def client(root: Path) -> Iterator[TestClient[Any]]:
    with _client(root) as c:
        yield c


def _client(root: Path, **config: Any) -> TestClient[Any]:
    cfg = HostConfig(root=root, download_allow_loopback=True, **config)
    return TestClient(create_app(cfg, [probers_plugin, storage_plugin], entry_points=False))


def start(client: TestClient[Any], source: Path | str, overrides: dict[str, Any] | None = None, **params: Any) -> Any:
    return client.post("/api/v2/models/install", params={"source": str(source), **params}, json=overrides or {})


def install(client: TestClient[Any], source: Path | str, overrides: dict[str, Any] | None = None, **params: Any) -> Any:
    """Install and wait (bounded) for the job to finish; the finished job."""
    answer = start(client, source, overrides, **params)
    assert answer.status_code == 201, answer.text
    job = answer.json()
    for _ in range(500):
        job = client.get(f"/api/v2/models/install/{job['id']}").json()
        if job["status"] in {"completed", "error", "cancelled"}:
            return job
        time.sleep(0.02)
    raise AssertionError(f"install of {source} did not finish: {job}")


def installed(client: TestClient[Any], source: Path | str, **params: Any) -> dict[str, Any]:
    job = install(client, source, **params)
    assert job["status"] == "completed", job
    config: dict[str, Any] = job["config_out"]
    return config


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes, outside the job folders (a finished job may still be removing its own)."""
    files: list[Path] = []
    for top, dirs, names in os.walk(folder):
        # Pruned before descending: rglob would walk into a job folder while its job deletes it.
        dirs[:] = sorted(d for d in dirs if d != ".tmp")
        files += [Path(top) / n for n in names]
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(files)}


def two_models(client: TestClient[Any], tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    a = installed(client, mf.write_lora_kohya(tmp_path / "src" / "a.safetensors", "sd-1"))
    b = installed(client, mf.write_vae(tmp_path / "src" / "b.safetensors"))
    assert (a["inplace"], b["inplace"]) == (False, False)
    return a, b


@pytest.mark.parametrize(
    "target",
    [".", "..", "", "sd-1", "sd-1/lora/../../..", "{b}", "{models}", "{outside}", "{b_abs}"],
)
def test_patch_cannot_point_a_record_elsewhere(
    client: TestClient[Any], models: Path, tmp_path: Path, target: str
) -> None:
    a, b = two_models(client, tmp_path)
    outside = mf.write_vae(tmp_path / "outside" / "keep.safetensors")
    path = target.format(b=b["path"], models=models, outside=outside, b_abs=models / b["path"])
    answer = client.patch(f"/api/v2/models/i/{a['key']}", json={"path": path, "description": "moved"})
    assert answer.status_code == 422, answer.text
    assert "path cannot be changed" in answer.json()["detail"]
    assert client.get(f"/api/v2/models/i/{a['key']}").json() == a  # nothing half-applied

    others = snapshot(tmp_path / "outside") | {"b": (models / b["path"]).read_bytes()}
    assert client.delete(f"/api/v2/models/i/{a['key']}").status_code == 200
    assert not (models / a["path"]).exists()
    assert snapshot(tmp_path / "outside") | {"b": (models / b["path"]).read_bytes()} == others
    assert client.get(f"/api/v2/models/i/{b['key']}").status_code == 200


def test_patch_that_repeats_the_path_and_inplace_passes(client: TestClient[Any], tmp_path: Path) -> None:
    a, _ = two_models(client, tmp_path)
    answer = client.patch(f"/api/v2/models/i/{a['key']}", json={**a, "description": "same place"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {**a, "description": "same place"}


def test_patch_cannot_make_an_in_place_model_deletable(client: TestClient[Any], models: Path) -> None:
    mine = mf.write_lora_kohya(models / "mine" / "x.safetensors", "sd-1")
    config = installed(client, mine, inplace=True)
    assert config["inplace"] is True
    answer = client.patch(f"/api/v2/models/i/{config['key']}", json={"inplace": False})
    assert answer.status_code == 422 and "inplace cannot be changed" in answer.json()["detail"]
    assert client.delete(f"/api/v2/models/i/{config['key']}").status_code == 200
    assert mine.is_file()


@pytest.mark.parametrize(
    "where",
    ["file inside the models dir", "folder inside the models dir", "file in a layout folder", "file outside"],
)
def test_in_place_models_are_only_unregistered(
    client: TestClient[Any], models: Path, tmp_path: Path, where: str
) -> None:
    source = {
        "file inside the models dir": lambda: mf.write_lora_kohya(models / "mine" / "x.safetensors", "sd-1"),
        "folder inside the models dir": lambda: mf.write_lora_diffusers_folder(models / "loras" / "f", "sd-1"),
        "file in a layout folder": lambda: mf.write_vae(models / "sd-1" / "vae" / "v.safetensors"),
        "file outside": lambda: mf.write_vae(tmp_path / "outside" / "v.safetensors"),
    }[where]()
    (tmp_path / "outside").mkdir(exist_ok=True)
    before = snapshot(models) | snapshot(tmp_path / "outside")
    config = installed(client, source, inplace=True)
    assert config["inplace"] is True
    assert client.delete(f"/api/v2/models/i/{config['key']}").status_code == 200
    assert client.get(f"/api/v2/models/i/{config['key']}").status_code == 404
    assert snapshot(models) | snapshot(tmp_path / "outside") == before


@pytest.mark.parametrize("inplace", [True, False])
@pytest.mark.parametrize("source", ["{models}", "{root}", "{models}/", "{models}/sd-1/..", "{tmp}"])
def test_install_source_may_not_hold_the_models_dir(
    client: TestClient[Any], root: Path, models: Path, source: str, inplace: bool
) -> None:
    installed(client, mf.write_vae(root.parent / "v.safetensors"))  # a model the directory holds
    (models / ".tmp").mkdir(exist_ok=True)
    before = snapshot(models)
    answer = start(
        client, source.format(models=models, root=root, tmp=models / ".tmp"), LORA_OVERRIDES, inplace=inplace
    )
    assert answer.status_code == 422, answer.text
    assert re.search("the models directory .* or a folder that holds it|working folder", answer.json()["detail"])
    assert len(client.get("/api/v2/models/install").json()) == 1  # only the first install: no job started
    assert snapshot(models) == before


def test_in_place_paths_may_not_hold_or_sit_inside_another_model(client: TestClient[Any], models: Path) -> None:
    pipe = installed(client, mf.write_diffusers_main(models.parent / "pipe", "sd-1"))
    inside = models / pipe["path"] / "unet" / "diffusion_pytorch_model.safetensors"
    before = snapshot(models)

    child = install(client, inside, LORA_OVERRIDES, inplace=True)
    assert child["status"] == "error" and "is inside the files of the model" in child["error"], child
    parent = install(client, models / "sd-1", {**LORA_OVERRIDES, "format": "diffusers"}, inplace=True)
    assert parent["status"] == "error" and "holds the files of the model" in parent["error"], parent

    assert [m["key"] for m in client.get("/api/v2/models/").json()["models"]] == [pipe["key"]]
    assert snapshot(models) == before
    assert client.delete(f"/api/v2/models/i/{pipe['key']}").status_code == 200
    assert not (models / pipe["path"]).exists()


@pytest.mark.parametrize("field", ["path", "inplace", "key", "hash"])
def test_install_overrides_cannot_decide_where_files_go(client: TestClient[Any], tmp_path: Path, field: str) -> None:
    lora = mf.write_lora_kohya(tmp_path / "l.safetensors", "sd-1")
    value: Any = {"path": ".", "inplace": False, "key": "k", "hash": "blake3:00"}[field]
    answer = start(client, lora, {field: value}, inplace=True)
    assert answer.status_code == 422 and f"cannot set {field}" in answer.json()["detail"], answer.text
    assert client.get("/api/v2/models/install").json() == []


def test_placing_never_follows_a_symlinked_layout_folder(client: TestClient[Any], models: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    models.mkdir(parents=True, exist_ok=True)
    (models / "sd-1").symlink_to(elsewhere, target_is_directory=True)
    job = install(client, mf.write_lora_kohya(tmp_path / "src" / "l.safetensors", "sd-1"))
    assert job["status"] == "error" and "outside the models directory" in job["error"], job
    assert list(elsewhere.rglob("*")) == []
    assert client.get("/api/v2/models/").json()["models"] == []


def test_url_install_lands_inside_the_models_dir(
    client: TestClient[Any], models: Path, tmp_path: Path, server: ModelServer
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    models.mkdir(parents=True, exist_ok=True)
    (models / "sd-1").symlink_to(elsewhere, target_is_directory=True)
    name = server.add_file(mf.write_embedding(tmp_path / "emb.safetensors", "sd-1"))
    job = install(client, f"{server.url}/files/{name}")
    assert job["status"] == "error" and "outside the models directory" in job["error"], job
    assert list(elsewhere.rglob("*")) == [] and not list((models / ".tmp").glob("*"))


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer() as srv:
        yield srv


def _record(key: str, path: str, source: str, source_type: str = "path", **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "hash": f"blake3:{key}",
        "name": key,
        "base": "sd-1",
        "type": "vae",
        "format": "checkpoint",
        "path": path,
        "source": source,
        "source_type": source_type,
        **extra,
    }


def _add_records(root: Path, records: list[dict[str, Any]]) -> None:
    """Write records straight into the store, as older code (or another writer) did."""

    async def add() -> None:
        host = make_host(root, model_sync_on_start=False)
        await host.start()
        try:
            for record in records:
                await host.models.store.add(host.models.validate(record))
        finally:
            await host.stop()

    asyncio.run(add())


def test_records_from_before_ownership_tracking_keep_their_files_unless_the_host_placed_them(
    root: Path, models: Path, tmp_path: Path
) -> None:
    copied = mf.write_vae(models / "sd-1" / "vae" / "copied.safetensors")
    downloaded = mf.write_vae(models / "sd-1" / "vae" / "downloaded.safetensors")
    in_place = mf.write_vae(models / "mine" / "in-place.safetensors")
    relative = mf.write_vae(models / "sd-1" / "vae" / "relative.safetensors")
    outside = mf.write_vae(tmp_path / "outside" / "o.safetensors")
    # What the old code stored: no inplace field at all.
    _add_records(
        root,
        [
            _record("copied", "sd-1/vae/copied.safetensors", str(tmp_path / "gone" / "copied.safetensors")),
            _record("downloaded", "sd-1/vae/downloaded.safetensors", "http://x/d.safetensors", "url"),
            _record("in-place", "mine/in-place.safetensors", str(in_place)),
            _record("relative", "sd-1/vae/relative.safetensors", "relative.safetensors"),
            _record("outside", str(outside), "http://x/o.safetensors", "url"),
            _record("dot", ".", "http://x/dot", "url"),  # an old PATCH {"path": "."}
        ],
    )
    with _client(root) as client:
        got = {m["key"]: m["inplace"] for m in client.get("/api/v2/models/").json()["models"]}
        assert got == {
            "copied": False,
            "downloaded": False,
            "in-place": True,
            "relative": True,
            "outside": True,
            "dot": True,
        }
        refused = client.delete("/api/v2/models/i/copied")  # "dot" still claims the whole models directory
        assert refused.status_code == 409 and "'dot'" in refused.json()["detail"], refused.text
        assert copied.is_file()
        for key in ["dot", "copied", "downloaded", "in-place", "relative", "outside"]:
            assert client.delete(f"/api/v2/models/i/{key}").status_code == 200, key
    assert models.is_dir()
    assert not copied.exists() and not downloaded.exists()
    assert in_place.is_file() and relative.is_file() and outside.is_file()


@pytest.mark.parametrize("case", ["models root", "parent of another model", "outside", "symlinked away"])
def test_delete_refuses_files_that_are_not_the_models_own(root: Path, models: Path, tmp_path: Path, case: str) -> None:
    other = mf.write_vae(models / "sd-1" / "vae" / "other.safetensors")
    outside = mf.write_vae(tmp_path / "outside" / "o.safetensors")
    placed = {
        "models root": ".",
        "parent of another model": "sd-1",
        "outside": str(outside),
        "symlinked away": "sd-1/lora/away.safetensors",
    }[case]
    if case == "symlinked away":
        (models / "sd-1" / "lora").mkdir()
        (models / "sd-1" / "lora" / "away.safetensors").symlink_to(outside)
    # A record that claims to be the host's own files (a plugin or a hand edit of the database could write it).
    _add_records(
        root,
        [
            _record("bad", placed, "http://x/bad", "url", inplace=False),
            _record("other", "sd-1/vae/other.safetensors", "http://x/o", "url", inplace=False),
        ],
    )
    before = snapshot(models) | snapshot(tmp_path / "outside")
    with _client(root) as client:
        answer = client.delete("/api/v2/models/i/bad")
        assert answer.status_code == 409, answer.text
        assert "was not deleted" in answer.json()["detail"] and "unregister=true" in answer.json()["detail"]
        assert client.get("/api/v2/models/i/bad").status_code == 200  # nothing deleted, not even the record
        assert client.delete("/api/v2/models/i/bad", params={"unregister": True}).status_code == 200
    assert snapshot(models) | snapshot(tmp_path / "outside") == before
    assert other.is_file() and outside.is_file()


@pytest.mark.parametrize("text", ["~;", "~no-such-user-here", "~no-such-user-here/models"])
def test_a_home_folder_of_an_unknown_user_is_a_4xx_not_a_500(client: TestClient[Any], text: str) -> None:
    # pathlib raises RuntimeError for ~user of a user the machine lacks: every place a typed path is expanded.
    answer = start(client, text)
    assert answer.status_code == 422, answer.text
    assert "has no user" in answer.json()["detail"] and "give the full path" in answer.json()["detail"]
    scanned = client.get("/api/v2/models/scan_folder", params={"scan_path": text})
    assert scanned.status_code == 422, scanned.text
    assert "has no user" in scanned.json()["detail"]
