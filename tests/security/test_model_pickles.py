"""Every file of a model is judged by its content before anything opens it: each pickle, whatever its
name, protocol or place in a folder, is scanned, and a file that cannot be scanned refuses the install."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from invoke_host.models.jobs import InstallStatus
from invoke_host.models.manager import ModelManager
from tests.models import model_files as mf
from tests.models.conftest import make_host
from tests.models.test_install import install
from tests.models.test_probing import _Evil

torch = pytest.importorskip("torch")


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[ModelManager]:
    host = make_host(tmp_path / "root")
    await host.start()
    try:
        yield host.models
    finally:
        await host.stop()


def evil(protocol: int) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(pickle.dumps({"w": _Evil()}, protocol=protocol))


def truncated_zip(path: Path) -> None:
    """A torch.save archive whose data.pkl ends two bytes in: before any global the scanner could report."""
    whole = path.with_suffix(".whole")
    torch.save({"w": torch.zeros(2)}, whole)
    with zipfile.ZipFile(whole) as old, zipfile.ZipFile(path, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            new.writestr(info, data[:2] if info.filename.endswith("data.pkl") else data)
    whole.unlink()


def not_weights(path: Path) -> None:
    path.write_bytes(b"\x00\x01 these bytes are no format at all" * 10)


def leftovers(manager: ModelManager) -> list[Path]:
    return [p for p in manager.models_dir.rglob("*") if p.is_file()]


@pytest.mark.parametrize(
    ("inside", "write", "message"),
    [
        ("unet/diffusion_pytorch_model.bin", evil(0), r"dangerous code \(posix\.system\)"),
        ("text_encoder/pytorch_model.bin", evil(1), r"dangerous code \(posix\.system\)"),
        ("unet/extra.pkl", evil(2), r"dangerous code \(posix\.system\)"),
        ("unet/weights", evil(4), r"dangerous code \(posix\.system\)"),
        ("vae/config.json.bak", evil(0), r"dangerous code \(posix\.system\)"),
        (".cache/hidden.bin", evil(2), r"dangerous code \(posix\.system\)"),
        ("text_encoder/model.bin", truncated_zip, r"could not be parsed"),
        ("unet/diffusion_pytorch_model.ckpt", not_weights, r"not a safetensors file, a checkpoint pickle or GGUF"),
    ],
)
@pytest.mark.parametrize("inplace", [False, True], ids=["copied", "in place"])
async def test_every_file_of_a_folder_is_checked(
    manager: ModelManager, tmp_path: Path, inside: str, write: Callable[[Path], None], message: str, inplace: bool
) -> None:
    folder = mf.write_diffusers_main(tmp_path / "pipe", "sd-1")
    (folder / inside).parent.mkdir(parents=True, exist_ok=True)
    write(folder / inside)
    job = await install(manager, str(folder), inplace=inplace)
    assert job.status is InstallStatus.Error and job.error_type == "UnsafeModelError", job
    assert (job.error or "").startswith(f"{inside}: "), job.error  # names the file inside the folder
    assert pytest.importorskip("re").search(message, job.error or ""), job.error
    assert await manager.store.search() == [] and leftovers(manager) == []
    assert not Path("/tmp/invoke-host-pwned").exists()


async def test_a_pickle_behind_a_symlinked_folder_is_checked(manager: ModelManager, tmp_path: Path) -> None:
    folder = mf.write_diffusers_main(tmp_path / "pipe", "sd-1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    evil(2)(elsewhere / "weights.bin")
    (folder / "unet" / "more").symlink_to(elsewhere, target_is_directory=True)
    job = await install(manager, str(folder), inplace=True)
    assert job.status is InstallStatus.Error and (job.error or "").startswith("unet/more/weights.bin: "), job.error


@pytest.mark.parametrize("protocol", [0, 1, 2])
async def test_a_single_file_pickle_of_any_protocol_is_scanned(
    manager: ModelManager, tmp_path: Path, protocol: int
) -> None:
    path = tmp_path / "model.ckpt"
    evil(protocol)(path)
    job = await install(manager, str(path))
    assert job.status is InstallStatus.Error and "dangerous code (posix.system)" in (job.error or ""), job.error
    assert leftovers(manager) == []


async def test_a_clean_folder_with_pickles_and_other_files_installs(manager: ModelManager, tmp_path: Path) -> None:
    folder = mf.write_diffusers_main(tmp_path / "pipe", "sd-1")
    (folder / "text_encoder").mkdir()
    torch.save({"w": torch.zeros(2)}, folder / "text_encoder" / "pytorch_model.bin")
    (folder / "tokenizer").mkdir()
    (folder / "tokenizer" / "vocab.json").write_text('{"a": 0}')
    (folder / "tokenizer" / "merges.txt").write_text("#version: 0.2\na b\n")
    (folder / "README.md").write_text("# A tiny pipeline\n")
    (folder / "preview.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    job = await install(manager, str(folder))
    assert job.status is InstallStatus.Completed, job.error
    placed = manager.models_dir / job.config_out["path"]
    assert (placed / "text_encoder" / "pytorch_model.bin").read_bytes() == (
        folder / "text_encoder" / "pytorch_model.bin"
    ).read_bytes()
