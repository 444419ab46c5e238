"""Model loaders: Stable Diffusion main models (diffusers folder or single file), VAEs and LoRAs.

Every loader loads onto the CPU; the host's cache moves models to the execution device.
Nothing here executes code from a model file: safetensors are read directly, and pickled
files only go through torch's ``weights_only`` loader (inside diffusers/transformers).
"""

from __future__ import annotations

import importlib
import json
import threading
from pathlib import Path
from typing import Any

from invoke_sdk.models.loading import ModelConfigLike, ModelLoader, config_field

from invoke_diffusers_nodes.embedding_loader import EmbeddingLoader
from invoke_diffusers_nodes.flux_file_loaders import flux_file_loaders, load_flux_main_file, load_flux_vae_file
from invoke_diffusers_nodes.flux_loaders import FluxPipelineParts, flux_loaders
from invoke_diffusers_nodes.flux_lora import convert_flux_lora
from invoke_diffusers_nodes.torch_support import TorchLoader, torch_dtype

__all__ = [
    "LoRALoader",
    "MainCheckpointLoader",
    "MainDiffusersLoader",
    "VAECheckpointLoader",
    "VAEDiffusersLoader",
    "all_loaders",
]

SUBMODELS = ("unet", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "vae", "scheduler")
_LIBRARIES = {"diffusers", "transformers"}
_PIPELINES = {"sd-1": "StableDiffusionPipeline", "sd-2": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline",
              "sdxl-refiner": "StableDiffusionXLImg2ImgPipeline"}


def _is_flux(config: ModelConfigLike) -> bool:
    # FLUX single files share the main/vae/lora checkpoint loaders' keys; their code lives in flux_* modules.
    return str(getattr(config.base, "value", config.base)) == "flux"


def _require_submodel(config: ModelConfigLike, submodel: str | None) -> str:
    if submodel not in SUBMODELS:
        raise ValueError(
            f"main model {config.key} is loaded one part at a time: ask for one of {', '.join(SUBMODELS)}, "
            f"not {submodel!r}"
        )
    return submodel


def _apply_prediction_type(config: ModelConfigLike, scheduler: Any) -> Any:
    prediction_type = config_field(config, "prediction_type")
    if prediction_type and scheduler.config.get("prediction_type") != prediction_type:
        # The installed config knows better than the file (v-prediction SD2 models ship epsilon configs).
        return type(scheduler).from_config({**scheduler.config, "prediction_type": prediction_type})
    return scheduler


class MainDiffusersLoader(TorchLoader):
    """``main/diffusers``: one submodel from a diffusers pipeline folder, by the class its model_index.json names."""

    model_type = "main"
    model_format = "diffusers"

    def __init__(self) -> None:
        self._flux = FluxPipelineParts()

    def configure(self, settings: Any) -> None:
        """The host config's loader settings (FLUX's transformer storage), read once before any load."""
        self._flux.configure(settings)

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        if config_field(config, "base") == "flux":
            return self._flux.load(config, submodel, dtype=dtype)
        part = _require_submodel(config, submodel)
        root = Path(config.path)
        index = json.loads((root / "model_index.json").read_text())
        entry = index.get(part)
        if not (isinstance(entry, list) and len(entry) == 2 and entry[0] in _LIBRARIES and entry[1]):
            raise ValueError(f"model {config.key} has no {part} (model_index.json in {root} does not list one)")
        library, class_name = entry
        cls = getattr(importlib.import_module(library), class_name)
        kwargs: dict[str, Any] = {"subfolder": part, "local_files_only": True}
        if part in ("unet", "vae"):
            kwargs["torch_dtype"] = torch_dtype(dtype)
        elif part.startswith("text_encoder"):
            kwargs["dtype"] = torch_dtype(dtype)
        model = cls.from_pretrained(str(root), **kwargs)
        if part == "scheduler":
            model = _apply_prediction_type(config, model)
        if hasattr(model, "eval"):
            model.eval()
        return model


class MainCheckpointLoader(TorchLoader):
    """``main/checkpoint``: one submodel from a single-file checkpoint, via ``from_single_file``.

    ``config_path`` names a local diffusers folder of the same architecture (configs and tokenizer;
    weights are not needed), so nothing is fetched from the hub. Without one (or with the legacy ``.yaml``
    name the prober records), diffusers' default configs for the architecture are used: from the hub
    cache, or downloaded once. The whole file is converted once and
    the parts not asked for yet are held until they are asked for, so loading every part reads the
    file once.
    """

    model_type = "main"
    model_format = "checkpoint"

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        if _is_flux(config):
            return load_flux_main_file(config, submodel, dtype=dtype)
        part = _require_submodel(config, submodel)
        slot = (str(config.path), dtype)
        with self._lock:
            parts = self._pending.get(slot)
            if parts is None or part not in parts:
                # Keep one converted file at a time: a new file replaces the parts left of the last one.
                parts = self._convert(config, dtype)
                self._pending = {slot: parts}
            model = parts.pop(part, None)
            if not parts:
                self._pending.pop(slot, None)
        if model is None:
            raise ValueError(f"model {config.key} has no {part}")
        if part == "scheduler":
            model = _apply_prediction_type(config, model)
        return model

    def _convert(self, config: ModelConfigLike, dtype: str) -> dict[str, Any]:
        import diffusers

        config_dir = config_field(config, "config_path")
        local = bool(config_dir) and (Path(config_dir) / "model_index.json").is_file()
        pipeline_name = _PIPELINES.get(str(getattr(config.base, "value", config.base)))
        if pipeline_name is None:
            raise ValueError(f"single-file model {config.key}: base {config.base!r} is not a Stable Diffusion base")
        pipeline_cls = getattr(diffusers, pipeline_name)
        kwargs: dict[str, Any] = {}
        if pipeline_name == "StableDiffusionPipeline":
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        if local:
            kwargs.update(config=str(config_dir), local_files_only=True)
        try:
            # Without a local folder (config_path unset, or the legacy .yaml name the prober records), diffusers
            # picks its default pipeline config for the checkpoint's architecture from the hub cache or the hub.
            pipeline = pipeline_cls.from_single_file(str(config.path), torch_dtype=torch_dtype(dtype), **kwargs)
        except (OSError, ValueError) as exc:
            if local:
                raise
            raise ValueError(
                f"single-file model {config.key} could not get the configs of its architecture ({config.base}) "
                f"without a download ({exc}); set its config_path to a local diffusers folder of that "
                f"architecture (model_index.json, configs, tokenizer), or allow the download once"
            ) from exc
        parts = {name: part for name, part in pipeline.components.items() if name in SUBMODELS and part is not None}
        for part in parts.values():
            if hasattr(part, "eval"):
                part.eval()
        return parts


class VAEDiffusersLoader(TorchLoader):
    """``vae/diffusers``: an ``AutoencoderKL`` folder."""

    model_type = "vae"
    model_format = "diffusers"

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        from diffusers import AutoencoderKL

        return AutoencoderKL.from_pretrained(str(config.path), torch_dtype=torch_dtype(dtype), local_files_only=True)


class VAECheckpointLoader(TorchLoader):
    """``vae/checkpoint``: a single-file VAE; ``config_path`` is a VAE config folder or a pipeline folder."""

    model_type = "vae"
    model_format = "checkpoint"

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        from diffusers import AutoencoderKL

        if _is_flux(config):
            return load_flux_vae_file(config, dtype=dtype)
        config_dir = config_field(config, "config_path")
        if not config_dir:
            raise ValueError(f"single-file VAE {config.key} needs config_path: a local folder with its config.json")
        kwargs: dict[str, Any] = {"config": str(config_dir)}
        if (Path(config_dir) / "vae" / "config.json").is_file():
            kwargs["subfolder"] = "vae"
        return AutoencoderKL.from_single_file(
            str(config.path), local_files_only=True, torch_dtype=torch_dtype(dtype), **kwargs
        )


class LoRALoader(TorchLoader):
    """``lora/<format>``: a LoRA state dict, kohya (``lora_unet_*``, ``lora_te*_*``) or PEFT (``unet.*`` ...).

    The tensors stay on the CPU in the file's dtype; the patcher moves what it applies.
    """

    model_type = "lora"

    def __init__(self, model_format: str) -> None:
        self.model_format = model_format

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        from safetensors.torch import load_file

        path = Path(config.path)
        if path.is_dir():
            files = sorted(path.glob("*.safetensors"))
            if not files:
                raise ValueError(f"LoRA {config.key}: no .safetensors file in {path}")
            path = files[0]
        if path.suffix != ".safetensors":
            raise ValueError(f"LoRA {config.key}: only .safetensors LoRAs load (pickled files can run code): {path}")
        state_dict = load_file(str(path))
        if _is_flux(config):
            return convert_flux_lora(state_dict, config.key)
        return state_dict


def all_loaders() -> list[ModelLoader]:
    """One loader instance per type/format this plugin handles."""
    return [
        MainDiffusersLoader(),
        MainCheckpointLoader(),
        VAEDiffusersLoader(),
        VAECheckpointLoader(),
        LoRALoader("lycoris"),
        LoRALoader("diffusers"),
        EmbeddingLoader("embedding_file"),
        EmbeddingLoader("embedding_folder"),
        *flux_loaders(),
        *flux_file_loaders(),
    ]
