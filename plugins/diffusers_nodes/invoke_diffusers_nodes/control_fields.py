"""What the ControlNet, T2I-Adapter and IP-Adapter nodes hand to ``denoise_latents`` (InvokeAI's names and shapes)."""

from __future__ import annotations

from typing import Literal

from invoke_sdk import ImageField, ModelIdentifierField, TensorField
from pydantic import BaseModel, Field, field_validator, model_validator

__all__ = [
    "CONTROLNET_MODE_VALUES",
    "CONTROLNET_RESIZE_VALUES",
    "ControlField",
    "IPAdapterField",
    "T2IAdapterField",
    "check_begin_end",
    "check_weights",
    "weight_at",
]

CONTROLNET_MODE_VALUES = Literal["balanced", "more_prompt", "more_control", "unbalanced"]
CONTROLNET_RESIZE_VALUES = Literal["just_resize", "crop_resize", "fill_resize", "just_resize_simple"]


def check_weights(weights: float | list[float], low: float = -1, high: float = 2) -> float | list[float]:
    """A weight, or one weight per step, each between ``low`` and ``high`` (InvokeAI's bounds)."""
    for weight in weights if isinstance(weights, list) else [weights]:
        if not low <= weight <= high:
            raise ValueError(f"each weight must be between {low} and {high}, not {weight}")
    if isinstance(weights, list) and not weights:
        raise ValueError("a list of weights needs one weight per step, not none")
    return weights


def check_begin_end(begin: float, end: float) -> None:
    """The step range must not be empty."""
    if begin >= end:
        raise ValueError(f"begin_step_percent ({begin}) must be below end_step_percent ({end})")


def weight_at(weights: float | list[float], step: int) -> float:
    """The weight for ``step``: the list's entry (its last one past its end), or the one weight."""
    if isinstance(weights, list):
        return float(weights[min(step, len(weights) - 1)])
    return float(weights)


class ControlField(BaseModel):
    """One ControlNet to apply while denoising."""

    image: ImageField = Field(description="The control image")
    control_model: ModelIdentifierField = Field(description="The ControlNet model to use")
    control_weight: float | list[float] = Field(default=1, description="The weight given to the ControlNet")
    begin_step_percent: float = Field(default=0, ge=0, le=1,
                                      description="When the ControlNet is first applied (% of total steps)")
    end_step_percent: float = Field(default=1, ge=0, le=1,
                                    description="When the ControlNet is last applied (% of total steps)")
    control_mode: CONTROLNET_MODE_VALUES = Field(default="balanced", description="The control mode to use")
    resize_mode: CONTROLNET_RESIZE_VALUES = Field(default="just_resize", description="The resize mode to use")

    @field_validator("control_weight")
    @classmethod
    def _weights(cls, value: float | list[float]) -> float | list[float]:
        return check_weights(value)

    @model_validator(mode="after")
    def _range(self) -> ControlField:
        check_begin_end(self.begin_step_percent, self.end_step_percent)
        return self


class T2IAdapterField(BaseModel):
    """One T2I-Adapter to apply while denoising."""

    image: ImageField = Field(description="The T2I-Adapter image prompt.")
    t2i_adapter_model: ModelIdentifierField = Field(description="The T2I-Adapter model to use.")
    weight: float | list[float] = Field(default=1, description="The weight given to the T2I-Adapter")
    begin_step_percent: float = Field(default=0, ge=0, le=1,
                                      description="When the T2I-Adapter is first applied (% of total steps)")
    end_step_percent: float = Field(default=1, ge=0, le=1,
                                    description="When the T2I-Adapter is last applied (% of total steps)")
    resize_mode: CONTROLNET_RESIZE_VALUES = Field(default="just_resize", description="The resize mode to use")

    @field_validator("weight")
    @classmethod
    def _weights(cls, value: float | list[float]) -> float | list[float]:
        return check_weights(value)

    @model_validator(mode="after")
    def _range(self) -> T2IAdapterField:
        check_begin_end(self.begin_step_percent, self.end_step_percent)
        return self


class IPAdapterField(BaseModel):
    """One IP-Adapter, with the CLIP vision encoder that reads its image, to apply while denoising."""

    image: ImageField | list[ImageField] = Field(description="The IP-Adapter image prompt(s).")
    ip_adapter_model: ModelIdentifierField = Field(description="The IP-Adapter model to use.")
    image_encoder_model: ModelIdentifierField = Field(description="The name of the CLIP image encoder model.")
    weight: float | list[float] = Field(default=1, description="The weight given to the IP-Adapter.")
    target_blocks: list[str] = Field(default=[], description="The IP Adapter blocks to apply")
    method: str = Field(default="full", description="Weight apply method")
    begin_step_percent: float = Field(default=0, ge=0, le=1,
                                      description="When the IP-Adapter is first applied (% of total steps)")
    end_step_percent: float = Field(default=1, ge=0, le=1,
                                    description="When the IP-Adapter is last applied (% of total steps)")
    mask: TensorField | None = Field(default=None, description="Where the IP-Adapter applies (not supported yet)")

    @field_validator("weight")
    @classmethod
    def _weights(cls, value: float | list[float]) -> float | list[float]:
        return check_weights(value)

    @model_validator(mode="after")
    def _range(self) -> IPAdapterField:
        check_begin_end(self.begin_step_percent, self.end_step_percent)
        return self
