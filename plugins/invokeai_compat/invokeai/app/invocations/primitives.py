"""InvokeAI's primitive outputs. Those invoke_sdk has are its own classes (one type id, one class), so a
compat node's image output connects to any other pack's image input (and its ``flux_conditioning_output`` is the
host's FLUX nodes' own)."""

from __future__ import annotations

from typing import Any

from invoke_sdk.flux_fields import FluxConditioningOutput
from invoke_sdk.outputs import (
    BooleanCollectionOutput,
    BooleanOutput,
    ConditioningOutput,
    FloatCollectionOutput,
    FloatOutput,
    ImageCollectionOutput,
    ImageOutput,
    IntegerCollectionOutput,
    IntegerOutput,
    LatentsOutput,
    StringCollectionOutput,
    StringOutput,
)

from invokeai.app.invocations.baseinvocation import BaseInvocationOutput, invocation_output
from invokeai.app.invocations.fields import (
    BoardField,
    BoundingBoxField,
    ColorField,
    ConditioningField,
    DenoiseMaskField,
    FluxConditioningField,
    ImageField,
    LatentsField,
    OutputField,
)

__all__ = [
    "BoardField",
    "BooleanCollectionOutput",
    "BooleanOutput",
    "BoundingBoxOutput",
    "ColorCollectionOutput",
    "ColorField",
    "ColorOutput",
    "ConditioningCollectionOutput",
    "ConditioningOutput",
    "DenoiseMaskOutput",
    "FloatCollectionOutput",
    "FloatOutput",
    "FluxConditioningCollectionOutput",
    "FluxConditioningOutput",
    "ImageCollectionOutput",
    "ImageField",
    "ImageOutput",
    "IntegerCollectionOutput",
    "IntegerOutput",
    "LatentsCollectionOutput",
    "LatentsField",
    "LatentsOutput",
    "StringCollectionOutput",
    "StringOutput",
]


@invocation_output("color_output")
class ColorOutput(BaseInvocationOutput):
    """A color."""

    color: ColorField = OutputField(description="The output color")


@invocation_output("color_collection_output")
class ColorCollectionOutput(BaseInvocationOutput):
    """A list of colors."""

    collection: list[ColorField] = OutputField(description="The output colors")


@invocation_output("bounding_box_output")
class BoundingBoxOutput(BaseInvocationOutput):
    """A bounding box."""

    bounding_box: BoundingBoxField = OutputField(description="The output bounding box")


@invocation_output("denoise_mask_output")
class DenoiseMaskOutput(BaseInvocationOutput):
    """A denoise mask."""

    denoise_mask: DenoiseMaskField = OutputField(description="Mask for denoise model run")

    @classmethod
    def build(cls, mask_name: str, masked_latents_name: str | None = None, gradient: bool = False) -> Any:
        return cls(denoise_mask=DenoiseMaskField(mask_name=mask_name, masked_latents_name=masked_latents_name,
                                                 gradient=gradient))


@invocation_output("latents_collection_output")
class LatentsCollectionOutput(BaseInvocationOutput):
    """A list of latents."""

    collection: list[LatentsField] = OutputField(description="Latents tensor")


@invocation_output("conditioning_collection_output")
class ConditioningCollectionOutput(BaseInvocationOutput):
    """A list of conditionings."""

    collection: list[ConditioningField] = OutputField(description="The output conditioning tensors")


@invocation_output("flux_conditioning_collection_output")
class FluxConditioningCollectionOutput(BaseInvocationOutput):
    """A list of FLUX conditionings."""

    collection: list[FluxConditioningField] = OutputField(description="The output conditioning tensors")
