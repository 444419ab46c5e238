"""Main (denoising) models: single-file LDM checkpoints and diffusers pipeline folders."""

from __future__ import annotations

from typing import Any

from invoke_sdk.models import (
    BaseModelType,
    ModelFormat,
    ModelType,
    ModelVariantType,
    SchedulerPredictionType,
)
from invoke_sdk.models.probing import ModelOnDisk, Recognised

from invoke_sd_probers.architecture import base_from_context_dim, context_dim, variant_from_in_channels

__all__ = ["MainCheckpointProber", "MainDiffusersProber"]

_ALL_BASES = (
    BaseModelType.StableDiffusion1,
    BaseModelType.StableDiffusion2,
    BaseModelType.StableDiffusionXL,
    BaseModelType.StableDiffusionXLRefiner,
)

# The legacy config a loader needs for each base (and the inpaint / v-prediction cases).
_LEGACY_CONFIGS: dict[tuple[BaseModelType, ModelVariantType], str] = {
    (BaseModelType.StableDiffusion1, ModelVariantType.Normal): "v1-inference.yaml",
    (BaseModelType.StableDiffusion1, ModelVariantType.Inpaint): "v1-inpainting-inference.yaml",
    (BaseModelType.StableDiffusion2, ModelVariantType.Normal): "v2-inference-v.yaml",
    (BaseModelType.StableDiffusion2, ModelVariantType.Inpaint): "v2-inpainting-inference.yaml",
    (BaseModelType.StableDiffusion2, ModelVariantType.Depth): "v2-midas-inference.yaml",
    (BaseModelType.StableDiffusionXL, ModelVariantType.Normal): "sd_xl_base.yaml",
    (BaseModelType.StableDiffusionXL, ModelVariantType.Inpaint): "sd_xl_inpaint.yaml",
    (BaseModelType.StableDiffusionXLRefiner, ModelVariantType.Normal): "sd_xl_refiner.yaml",
}
# An SD 2.x normal model's config follows its prediction type: the 768px v-prediction models and the 512px
# epsilon "base" ones were released with different configs (InvokeAI's names, so either program reads the other's).
_SD2_EPSILON_CONFIG = "v2-inference.yaml"


def _legacy_config(
    base: BaseModelType, variant: ModelVariantType, prediction: SchedulerPredictionType
) -> str | None:
    if (base, variant, prediction) == (
        BaseModelType.StableDiffusion2, ModelVariantType.Normal, SchedulerPredictionType.Epsilon
    ):
        return _SD2_EPSILON_CONFIG
    return _LEGACY_CONFIGS.get((base, variant))

_UNET = "model.diffusion_model."


def _prediction_from_metadata(model: ModelOnDisk) -> SchedulerPredictionType | None:
    # Some trainers write the prediction type into the modelspec metadata or a marker tensor.
    spec = model.metadata.get("modelspec.prediction_type", "").lower()
    if spec in {"v", "v_prediction", "v-prediction"} or "v_pred" in model.tensors:
        return SchedulerPredictionType.VPrediction
    if spec in {"epsilon", "eps"}:
        return SchedulerPredictionType.Epsilon
    return None


class MainCheckpointProber:
    """SD 1.x / 2.x / XL / XL refiner in one file, from the UNet's cross-attention and input widths."""

    name = "sd.main.checkpoint"
    order = 60
    recognises = (Recognised(ModelType.Main, ModelFormat.Checkpoint, _ALL_BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        if model.is_folder or f"{_UNET}input_blocks.0.0.weight" not in model.tensors:
            return None
        base = base_from_context_dim(context_dim(model.tensors, ["attn2.to_k.weight"], prefix=_UNET))
        if base is None:
            return None
        in_shape = model.shape(f"{_UNET}input_blocks.0.0.weight") or ()
        variant = variant_from_in_channels(in_shape[1] if len(in_shape) > 1 else None)
        prediction = _prediction_from_metadata(model)
        if prediction is None:
            # SD 2.x 768px checkpoints are v-prediction and nothing in the file says so; the 512px
            # "base" ones are epsilon: override at install when the default is wrong.
            v_default = base is BaseModelType.StableDiffusion2 and variant is ModelVariantType.Normal
            prediction = SchedulerPredictionType.VPrediction if v_default else SchedulerPredictionType.Epsilon
        return {
            "type": ModelType.Main,
            "format": ModelFormat.Checkpoint,
            "base": base,
            "variant": variant,
            "prediction_type": prediction,
            "upcast_attention": base is BaseModelType.StableDiffusion2
            and prediction is SchedulerPredictionType.VPrediction,
            "config_path": _legacy_config(base, variant, prediction),
        }


def _first_int(value: Any) -> int | None:
    if isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, int) else None


class MainDiffusersProber:
    """A diffusers pipeline folder: model_index.json plus unet/config.json and the scheduler config."""

    name = "sd.main.diffusers"
    order = 60
    recognises = (Recognised(ModelType.Main, ModelFormat.Diffusers, _ALL_BASES),)

    def probe(self, model: ModelOnDisk) -> dict[str, Any] | None:
        index = model.json("model_index.json")
        unet = model.json("unet/config.json")
        if index is None or unet is None:
            return None
        base = base_from_context_dim(_first_int(unet.get("cross_attention_dim")))
        if base is None:
            return None
        scheduler = model.json("scheduler/scheduler_config.json") or {}
        prediction = SchedulerPredictionType(scheduler.get("prediction_type") or "epsilon")
        return {
            "type": ModelType.Main,
            "format": ModelFormat.Diffusers,
            "base": base,
            "variant": variant_from_in_channels(_first_int(unet.get("in_channels"))),
            "prediction_type": prediction,
            "upcast_attention": bool(unet.get("upcast_attention", False)),
        }
