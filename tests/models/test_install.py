from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from invoke_host.models.jobs import InstallStatus
from invoke_host.models.manager import ModelManager
from tests.models import model_files as mf
from tests.models.conftest import make_host
from tests.models.servers import ModelServer
from tests.models.test_probing import _Evil


def leftovers(manager: ModelManager) -> list[Path]:
    return [p for p in manager.models_dir.rglob("*") if p.is_file()]


async def install(manager: ModelManager, source: str, **kwargs: object):  # type: ignore[no-untyped-def]
    job = manager.installer.import_model(source, **kwargs)  # type: ignore[arg-type]
    return await manager.installer.wait(job.id)


async def test_local_file_in_place_then_same_content_is_one_model(manager: ModelManager, tmp_path: Path) -> None:
    path = mf.write_lora_kohya(tmp_path / "my-lora.safetensors", "sd-1")
    job = await install(manager, str(path), inplace=True)
    assert job.status is InstallStatus.Completed, job.error
    config = await manager.store.get(job.config_out["key"])
    assert (config.type.value, config.base.value, config.name, config.path) == ("lora", "sd-1", "my-lora", str(path))
    assert config.hash.startswith("blake3:")
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(path.read_bytes())
    again = await install(manager, str(copy), inplace=True)
    assert again.status is InstallStatus.Error and again.error_type == "DuplicateModelError"
    assert len(await manager.store.search()) == 1


async def test_local_folder_copied_with_overrides(manager: ModelManager, tmp_path: Path) -> None:
    folder = mf.write_diffusers_main(tmp_path / "pipe", "sd-2", "epsilon")
    job = await install(manager, str(folder), inplace=False, config={"name": "Mine", "prediction_type": "v_prediction"})
    assert job.status is InstallStatus.Completed, job.error
    config = await manager.store.get(job.config_out["key"])
    assert config.name == "Mine" and config.prediction_type.value == "v_prediction"  # type: ignore[attr-defined]
    assert config.path == "sd-2/main/pipe"
    assert (manager.models_dir / "sd-2/main/pipe/unet/config.json").is_file()
    assert folder.is_dir()  # the source stays
    assert not (manager.models_dir / ".tmp").exists() or not any((manager.models_dir / ".tmp").iterdir())


async def test_bad_override_fails_without_record(manager: ModelManager, tmp_path: Path) -> None:
    path = mf.write_vae(tmp_path / "vae.safetensors")
    job = await install(manager, str(path), inplace=False, config={"base": "sd-9"})
    assert job.status is InstallStatus.Error and "base" in (job.error or "")
    assert await manager.store.search() == [] and leftovers(manager) == []


async def test_url_install_with_redirect_and_content_disposition(
    manager: ModelManager, server: ModelServer, tmp_path: Path
) -> None:
    name = server.add_file(mf.write_embedding(tmp_path / "emb.safetensors", "sd-1"))
    job = await install(manager, f"{server.url}/redirect/{name}")
    assert job.status is InstallStatus.Completed, job.error
    assert job.bytes == job.total_bytes == len(server.files[name])
    lora = server.add_file(mf.write_lora_peft(tmp_path / "peft.safetensors", "sd-1"))
    job = await install(manager, f"{server.url}/named/{lora}")
    assert job.status is InstallStatus.Completed, job.error
    assert job.config_out["path"] == "sd-1/lora/evil.safetensors"  # ..\evil reduced to one safe name


async def test_url_resumes_with_range(manager: ModelManager, server: ModelServer, tmp_path: Path) -> None:
    name = server.add_file(mf.write_main_checkpoint(tmp_path / "big.safetensors", "sdxl"))
    job = await install(manager, f"{server.url}/ranged/{name}")
    assert job.status is InstallStatus.Completed, job.error
    assert [r for r in server.requests if r[2]] and server.requests[-1][2].startswith("bytes=")
    placed = manager.models_dir / job.config_out["path"]
    assert placed.read_bytes() == server.files[name]


@pytest.mark.parametrize(
    ("route", "message"),
    [("truncated/x.safetensors", "incomplete|broke off"), ("html", "HTML page"), ("missing", "404")],
)
async def test_url_failures_leave_nothing(
    manager: ModelManager, server: ModelServer, tmp_path: Path, route: str, message: str
) -> None:
    server.files["x.safetensors"] = mf.write_vae(tmp_path / "x.safetensors").read_bytes()
    job = await install(manager, f"{server.url}/{route}")
    assert job.status is InstallStatus.Error
    assert pytest.importorskip("re").search(message, job.error or "")
    assert leftovers(manager) == [] and await manager.store.search() == []


async def test_loopback_refused_unless_allowed(tmp_path: Path, server: ModelServer) -> None:
    server.add_file(mf.write_vae(tmp_path / "v.safetensors"))
    host = make_host(tmp_path / "root", download_allow_loopback=False)
    await host.start()
    try:
        job = await install(host.models, f"{server.url}/files/v.safetensors")
    finally:
        await host.stop()
    assert job.status is InstallStatus.Error and "loopback" in (job.error or "")
    assert server.requests == []  # refused before connecting


async def test_metadata_address_refused_even_when_private_allowed(tmp_path: Path) -> None:
    host = make_host(tmp_path / "root", download_allow_private=True)
    await host.start()
    try:
        job = await install(host.models, "http://169.254.169.254/latest/meta-data/model.safetensors")
    finally:
        await host.stop()
    assert job.status is InstallStatus.Error and "link-local" in (job.error or "")


async def test_dangerous_pickle_url_refused(manager: ModelManager, server: ModelServer) -> None:
    server.files["evil.ckpt"] = pickle.dumps({"state_dict": _Evil()}, protocol=2)
    job = await install(manager, f"{server.url}/files/evil.ckpt")
    assert job.status is InstallStatus.Error and job.error_type == "UnsafeModelError"
    assert leftovers(manager) == []


async def test_hugging_face_repo_with_variant_and_subfolder(
    manager: ModelManager, server: ModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    folder = mf.write_diffusers_main(tmp_path / "pipe", "sdxl")
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    weights = files.pop("unet/diffusion_pytorch_model.safetensors")
    files["unet/diffusion_pytorch_model.fp16.safetensors"] = weights
    files["unet/diffusion_pytorch_model.safetensors"] = weights + b""  # same bytes, full precision name
    files["README.md"] = b"# readme"
    server.repos["owner/pipe"] = files
    vae = mf.write_vae(tmp_path / "vae" / "diffusion_pytorch_model.safetensors").read_bytes()
    server.repos["owner/pipe"]["vae/diffusion_pytorch_model.safetensors"] = vae
    server.repos["owner/pipe"]["vae/config.json"] = b'{"_class_name": "AutoencoderKL", "scaling_factor": 0.13025}'

    job = await install(manager, "owner/pipe", variant="fp16")
    assert job.status is InstallStatus.Completed, job.error
    assert (job.config_out["type"], job.config_out["base"], job.config_out["format"]) == ("main", "sdxl", "diffusers")
    placed = manager.models_dir / job.config_out["path"]
    assert (placed / "unet/diffusion_pytorch_model.fp16.safetensors").is_file()
    assert not (placed / "unet/diffusion_pytorch_model.safetensors").exists()
    assert not (placed / "README.md").exists()

    job = await install(manager, "owner/pipe:vae")
    assert job.status is InstallStatus.Completed, job.error
    assert (job.config_out["type"], job.config_out["base"]) == ("vae", "sdxl")

    job = await install(manager, "owner/nothing")
    assert job.status is InstallStatus.Error and "not found" in (job.error or "")
    assert await manager.store.search(type=None) and not list((manager.models_dir / ".tmp").glob("*"))


async def test_cancel_leaves_nothing(manager: ModelManager, server: ModelServer, tmp_path: Path) -> None:
    server.add_file(mf.write_vae(tmp_path / "v.safetensors"))
    job = manager.installer.import_model(f"{server.url}/files/v.safetensors")
    manager.installer.cancel_job(job.id)
    job = await manager.installer.wait(job.id)
    assert job.status is InstallStatus.Cancelled
    assert leftovers(manager) == [] and await manager.store.search() == []


async def test_delete_unregister_scan_and_sync(manager: ModelManager, tmp_path: Path) -> None:
    outside = mf.write_vae(tmp_path / "outside.safetensors")
    a = await install(manager, str(outside), inplace=True)
    b = await install(manager, str(mf.write_lora_kohya(tmp_path / "l.safetensors", "sdxl")), inplace=False)
    scan = await manager.scan_folder(tmp_path)
    assert {Path(s["path"]).name: s["is_installed"] for s in scan} == {
        "l.safetensors": False,
        "outside.safetensors": True,
    }
    placed = manager.models_dir / b.config_out["path"]
    await manager.delete(b.config_out["key"])
    assert not placed.exists()
    await manager.delete(a.config_out["key"])
    assert outside.exists()  # outside the models directory: only the record goes
    c = await install(manager, str(outside), inplace=True)
    outside.unlink()
    report = await manager.sync()
    assert report["missing"] == [c.config_out["key"]] and await manager.store.search() == []


@pytest.mark.parametrize(
    ("endpoint", "config", "reason"),
    [
        ("loopback", {"download_allow_loopback": False}, "loopback address"),
        ("http://169.254.169.254", {"download_allow_private": True}, "link-local"),
        ("http://10.1.2.3:8080", {}, "private address"),
    ],
)
async def test_hf_endpoint_is_held_to_the_address_policy(
    tmp_path: Path,
    server: ModelServer,
    monkeypatch: pytest.MonkeyPatch,
    endpoint: str,
    config: dict[str, object],
    reason: str,
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", server.url if endpoint == "loopback" else endpoint)
    weights = mf.write_vae(tmp_path / "v.safetensors").read_bytes()
    server.repos["owner/vae"] = {"diffusion_pytorch_model.safetensors": weights}
    host = make_host(tmp_path / "root", **config)
    await host.start()
    try:
        job = await install(host.models, "owner/vae")
        assert await host.models.store.search() == []
    finally:
        await host.stop()
    assert job.status is InstallStatus.Error and job.error_type == "BlockedAddressError"
    assert reason in (job.error or "") and "HF_ENDPOINT" in (job.error or "")
    assert server.requests == []  # refused before the hub was asked anything


async def test_concurrent_installs_of_one_file_name_each_keep_their_own_bytes(
    manager: ModelManager, tmp_path: Path
) -> None:
    sources = [
        mf.write_main_checkpoint(tmp_path / str(n) / "model.safetensors", "sd-1", pad_bytes=2 * n + 2) for n in range(4)
    ]
    jobs = [manager.installer.import_model(str(s), inplace=False) for s in sources]
    done = [await manager.installer.wait(j.id) for j in jobs]
    assert [j.status for j in done] == [InstallStatus.Completed] * 4, [j.error for j in done]
    paths = [j.config_out["path"] for j in done]
    assert len(set(paths)) == 4 and "sd-1/main/model.safetensors" in paths
    for source, job in zip(sources, done, strict=True):
        assert (manager.models_dir / job.config_out["path"]).read_bytes() == source.read_bytes()
