"""flux_lora_loader through the queue API: FLUX LoRA files installed over HTTP (so probed), applied by a graph."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import save_file

from tests.flux_files.flux_tiny import bfl_linears, bfl_lora, diffusers_to_bfl, meta_state_dict
from tests.generation.queue_harness import queue_api
from tests.models import model_files as mf


def graph(lora_key: str) -> dict[str, object]:
    return {"id": "flux-lora", "nodes": {"lora": {"id": "lora", "type": "flux_lora_loader", "lora": {"key": lora_key},
                                                  "weight": 0.6}}, "edges": []}


def test_flux_lora_loader_takes_a_flux_lora_and_refuses_an_sd_one(tmp_path: Path) -> None:
    real = diffusers_to_bfl(meta_state_dict("transformer", num_layers=1, num_single_layers=1))
    lora = {k: v.to("cpu") if v.device.type != "meta" else v.new_zeros(v.shape, device="cpu")
            for k, v in bfl_lora(bfl_linears(real), "kohya", rank=2, alpha=1.0, meta=True).items()}
    save_file(lora, str(tmp_path / "flux-style.safetensors"))
    with queue_api(tmp_path / "root") as api:
        flux_key = api.install(tmp_path / "flux-style.safetensors")
        record = api.model(flux_key)
        assert (record["type"], record["format"], record["base"], record["layout"]) == (
            "lora", "lycoris", "flux", "kohya")
        run = api.run(graph(flux_key))
        assert run.results["lora"] == {"type": "flux_lora_loader_output", "transformer": None, "clip": None,
                                       "t5_encoder": None}

        sd_key = api.install(mf.write_lora_kohya(tmp_path / "sd-style.safetensors", "sd-1"))
        run = api.run(graph(sd_key), expect="failed")
        assert run.error is not None and f"model {sd_key} has base sd-1, this node takes flux" in run.error


def test_flux_denoise_refuses_a_regional_mask_it_would_otherwise_ignore() -> None:
    from invoke_diffusers_nodes.flux_nodes import FluxDenoiseInvocation
    from invoke_sdk import ModelIdentifierField, TensorField
    from invoke_sdk.flux_fields import FluxConditioningField, TransformerField
    from invoke_sdk.testing import run_node

    masked = FluxConditioningField(conditioning_name="c", mask=TensorField(tensor_name="m"))
    node = FluxDenoiseInvocation(transformer=TransformerField(transformer=ModelIdentifierField(key="t")),
                                 positive_text_conditioning=masked, width=64, height=64)
    with pytest.raises(ValueError, match="positive_text_conditioning carries a regional mask, which flux_denoise "
                                         "does not apply"):
        run_node(node)
