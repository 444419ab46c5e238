from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from invoke_sd_probers.plugin import PROBERS
from invoke_sdk.models.probing import ModelOnDisk, UnknownModelError, detect_file_format

from invoke_host.models.pickle_safety import UnsafeModelError
from invoke_host.models.probing import check_files, probe_model
from invoke_host.registry.model_contributions import ordered_probers
from tests.models import model_files as mf

PROBER_LIST = ordered_probers(p() for p in PROBERS)


def probe(path: Path) -> dict[str, object]:
    found = probe_model(path, PROBER_LIST)
    found.pop("_prober")
    return {k: getattr(v, "value", v) for k, v in found.items()}


@pytest.mark.parametrize("base", ["sd-1", "sd-2", "sdxl", "sdxl-refiner"])
def test_main_checkpoints_by_cross_attention_width(tmp_path: Path, base: str) -> None:
    found = probe(mf.write_main_checkpoint(tmp_path / "m.safetensors", base))
    assert (found["type"], found["format"], found["base"]) == ("main", "checkpoint", base)
    assert found["variant"] == "normal"
    assert found["prediction_type"] == ("v_prediction" if base == "sd-2" else "epsilon")


def test_inpaint_variant_and_v_prediction_from_metadata(tmp_path: Path) -> None:
    found = probe(mf.write_main_checkpoint(tmp_path / "a.safetensors", "sd-1", in_channels=9))
    assert found["variant"] == "inpaint"
    found = probe(
        mf.write_main_checkpoint(tmp_path / "b.safetensors", "sdxl", metadata={"modelspec.prediction_type": "v"})
    )
    assert found["prediction_type"] == "v_prediction"


@pytest.mark.parametrize(
    ("metadata", "prediction", "config_path", "upcast"),
    [
        ({}, "v_prediction", "v2-inference-v.yaml", True),  # nothing in the file: the 768px v default
        ({"modelspec.prediction_type": "epsilon"}, "epsilon", "v2-inference.yaml", False),
        ({"modelspec.prediction_type": "v"}, "v_prediction", "v2-inference-v.yaml", True),
    ],
)
def test_an_sd2_checkpoints_legacy_config_follows_its_prediction_type(
    tmp_path: Path, metadata: dict[str, str], prediction: str, config_path: str, upcast: bool
) -> None:
    found = probe(mf.write_main_checkpoint(tmp_path / "sd2.safetensors", "sd-2", metadata=metadata))
    assert (found["base"], found["variant"], found["prediction_type"]) == ("sd-2", "normal", prediction)
    assert (found["config_path"], found["upcast_attention"]) == (config_path, upcast)


@pytest.mark.parametrize(
    ("base", "prediction"),
    [("sd-1", "epsilon"), ("sd-2", "v_prediction"), ("sdxl", "epsilon"), ("sdxl-refiner", "epsilon")],
)
def test_diffusers_main_folders(tmp_path: Path, base: str, prediction: str) -> None:
    found = probe(mf.write_diffusers_main(tmp_path / "pipe", base, prediction))
    assert (found["type"], found["format"], found["base"], found["prediction_type"]) == (
        "main",
        "diffusers",
        base,
        prediction,
    )


@pytest.mark.parametrize(
    ("writer", "expected"),
    [
        (lambda p: mf.write_vae(p / "sdxl_vae.safetensors"), ("vae", "checkpoint", "sdxl")),
        (lambda p: mf.write_vae(p / "vae.safetensors"), ("vae", "checkpoint", "sd-1")),
        (lambda p: mf.write_lora_kohya(p / "l.safetensors", "sd-1"), ("lora", "lycoris", "sd-1")),
        (lambda p: mf.write_lora_kohya(p / "l.safetensors", "sd-2"), ("lora", "lycoris", "sd-2")),
        (lambda p: mf.write_lora_kohya(p / "l.safetensors", "sdxl"), ("lora", "lycoris", "sdxl")),
        (lambda p: mf.write_lora_peft(p / "l.safetensors", "sd-1"), ("lora", "lycoris", "sd-1")),
        (lambda p: mf.write_embedding(p / "e.safetensors", "sd-1"), ("embedding", "embedding_file", "sd-1")),
        (lambda p: mf.write_embedding(p / "e.safetensors", "sd-2"), ("embedding", "embedding_file", "sd-2")),
        (lambda p: mf.write_embedding(p / "e.safetensors", "sdxl"), ("embedding", "embedding_file", "sdxl")),
        (lambda p: mf.write_controlnet(p / "c.safetensors", "sd-1"), ("controlnet", "checkpoint", "sd-1")),
        (lambda p: mf.write_controlnet(p / "c.safetensors", "sdxl"), ("controlnet", "checkpoint", "sdxl")),
        (lambda p: mf.write_t2i_folder(p / "t2i", "full_adapter_xl"), ("t2i_adapter", "diffusers", "sdxl")),
        (lambda p: mf.write_t2i_folder(p / "t2i", "full_adapter"), ("t2i_adapter", "diffusers", "sd-1")),
        (lambda p: mf.write_t2i_checkpoint(p / "t.safetensors", "sd-1"), ("t2i_adapter", "checkpoint", "sd-1")),
        (lambda p: mf.write_t2i_checkpoint(p / "t.safetensors", "sdxl"), ("t2i_adapter", "checkpoint", "sdxl")),
        (
            lambda p: mf.write_t2i_checkpoint(p / "t.safetensors", "sdxl", prefix=""),
            ("t2i_adapter", "checkpoint", "sdxl"),
        ),
        (lambda p: mf.write_lora_diffusers_folder(p / "l", "sd-1"), ("lora", "diffusers", "sd-1")),
        (lambda p: mf.write_lora_diffusers_folder(p / "l", "sd-2"), ("lora", "diffusers", "sd-2")),
        (lambda p: mf.write_lora_diffusers_folder(p / "l", "sdxl"), ("lora", "diffusers", "sdxl")),
        (lambda p: mf.write_embedding_folder(p / "e", "sd-1"), ("embedding", "embedding_folder", "sd-1")),
        (lambda p: mf.write_embedding_folder(p / "e", "sd-2"), ("embedding", "embedding_folder", "sd-2")),
        (lambda p: mf.write_ip_adapter(p / "ip.safetensors", "sd-1"), ("ip_adapter", "checkpoint", "sd-1")),
        (lambda p: mf.write_ip_adapter(p / "ip.safetensors", "sdxl"), ("ip_adapter", "checkpoint", "sdxl")),
        (lambda p: mf.write_clip_vision(p / "enc"), ("clip_vision", "diffusers", "any")),
    ],
)
def test_other_kinds(tmp_path: Path, writer: object, expected: tuple[str, str, str]) -> None:
    path = writer(tmp_path)  # type: ignore[operator]
    found = probe(path)
    assert (found["type"], found["format"], found["base"]) == expected


def test_peft_layout_is_recorded(tmp_path: Path) -> None:
    assert probe(mf.write_lora_peft(tmp_path / "l.safetensors", "sd-1"))["layout"] == "peft"
    assert probe(mf.write_lora_kohya(tmp_path / "k.safetensors", "sd-1"))["layout"] == "kohya"


def test_unknown_model_names_the_path(tmp_path: Path) -> None:
    path = mf._save(tmp_path / "mystery.safetensors", {"something.weight": (2, 2)})
    with pytest.raises(UnknownModelError, match=r"mystery\.safetensors"):
        probe_model(path, PROBER_LIST)


def test_format_is_decided_by_content_not_name(tmp_path: Path) -> None:
    fake = tmp_path / "model.SAFETENSORS"
    fake.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    assert detect_file_format(fake) == "pickle"
    real = mf.write_vae(tmp_path / "vae.ckpt")
    assert detect_file_format(real) == "safetensors"
    assert probe(real)["type"] == "vae"


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned > /tmp/invoke-host-pwned",))


def test_dangerous_pickle_is_refused_before_loading(tmp_path: Path) -> None:
    evil = tmp_path / "evil.safetensors"  # the name lies: the content decides
    evil.write_bytes(pickle.dumps({"state_dict": _Evil()}, protocol=2))
    with pytest.raises(UnsafeModelError, match=r"dangerous code \(.*system"):
        check_files(evil)
    with pytest.raises(UnsafeModelError):
        probe_model(evil, PROBER_LIST)
    assert not Path("/tmp/invoke-host-pwned").exists()


def test_unparseable_pickle_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"\x80\x02}q\x00(X\x01\x00\x00\x00a" + b"\xff" * 5)
    with pytest.raises(UnsafeModelError):
        check_files(broken)


def test_safe_torch_pickle_is_probed_with_weights_only(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "ti.pt"
    torch.save({"string_to_param": {"*": torch.zeros(2, 1024)}, "name": "tok"}, path)
    check_files(path)
    assert probe(path)["base"] == "sd-2"


def test_model_on_disk_reads_header_only(tmp_path: Path) -> None:
    path = mf.write_main_checkpoint(tmp_path / "m.safetensors", "sd-1")
    with path.open("r+b") as fh:  # corrupt the tensor data: the header must still read
        fh.seek(-16, 2)
        fh.write(b"\xff" * 16)
    model = ModelOnDisk(path)
    assert model.shape("model.diffusion_model.input_blocks.0.0.weight") == (8, 4, 3, 3)
