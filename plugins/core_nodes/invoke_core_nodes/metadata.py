"""Metadata nodes: ``core_metadata`` (InvokeAI's id, fields and output) and the generic item/dict/merge nodes.

InvokeAI's client builds every generation graph with a ``core_metadata`` node wired into the node that saves the
image; its "recall parameters" reads those field names back from the image. The fields here are InvokeAI's
(``invokeai/app/invocations/metadata.py``, 2.2.0) with their types, so a graph from its client validates here and
an image saved here recalls there. Like InvokeAI's, the node takes fields it does not declare (its client adds
some per feature) and passes them into the metadata unchanged.
"""

from __future__ import annotations

from typing import Any

from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    InputField,
    InvocationContext,
    ModelIdentifierField,
    OutputField,
    invocation,
    invocation_output,
)
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["NODES", "LoRAMetadataField", "MetadataItemField", "MetadataItemOutput", "MetadataOutput"]


class MetadataItemField(BaseModel):
    """One labelled metadata value."""

    label: str = Field(description="Label for this metadata item")
    value: Any = Field(description="The value for this metadata item (may be any type)")


class LoRAMetadataField(BaseModel):
    """A LoRA and its weight, as the metadata records it."""

    model: ModelIdentifierField = Field(description="The LoRA model")
    weight: float = Field(description="The weight at which the LoRA is applied")


@invocation_output("metadata_output")
class MetadataOutput(BaseInvocationOutput):
    """A metadata dict, to wire into a node that saves an image (its ``metadata`` input)."""

    metadata: dict[str, Any] = OutputField(description="Metadata Dict")


@invocation_output("metadata_item_output")
class MetadataItemOutput(BaseInvocationOutput):
    """One metadata item."""

    item: MetadataItemField = OutputField(description="Metadata Item")


# Fields of the node itself, never metadata.
_NOT_METADATA = frozenset({"id", "type", "is_intermediate", "use_cache", "version"})


@invocation("core_metadata", title="Core Metadata", tags=["metadata"], category="metadata", version="2.2.0")
class CoreMetadataInvocation(BaseInvocation):
    """Collects the parameters of a generation into the metadata its image is saved with (InvokeAI's fields)."""

    model_config = ConfigDict(extra="allow")

    generation_mode: str | None = InputField(default=None, description="The generation mode that output this image")
    positive_prompt: str | None = InputField(default=None, description="The positive prompt parameter")
    negative_prompt: str | None = InputField(default=None, description="The negative prompt parameter")
    width: int | None = InputField(default=None, description="The width parameter")
    height: int | None = InputField(default=None, description="The height parameter")
    seed: int | None = InputField(default=None, description="The seed used for noise generation")
    rand_device: str | None = InputField(default=None, description="The device used for random number generation")
    cfg_scale: float | None = InputField(default=None, description="The classifier-free guidance scale parameter")
    cfg_rescale_multiplier: float | None = InputField(default=None, description="Rescale multiplier for CFG guidance")
    steps: int | None = InputField(default=None, description="The number of steps used for inference")
    scheduler: str | None = InputField(default=None, description="The scheduler used for inference")
    seamless_x: bool | None = InputField(default=None, description="Whether seamless tiling was used on the X axis")
    seamless_y: bool | None = InputField(default=None, description="Whether seamless tiling was used on the Y axis")
    clip_skip: int | None = InputField(default=None, description="The number of skipped CLIP layers")
    model: ModelIdentifierField | None = InputField(default=None, description="The main model used for inference")
    controlnets: list[dict[str, Any]] | None = InputField(default=None, description="The ControlNets used")
    ipAdapters: list[dict[str, Any]] | None = InputField(default=None, description="The IP Adapters used")  # noqa: N815
    t2iAdapters: list[dict[str, Any]] | None = InputField(default=None, description="The T2I Adapters used")  # noqa: N815
    loras: list[LoRAMetadataField] | None = InputField(default=None, description="The LoRAs used for inference")
    strength: float | None = InputField(default=None, description="The strength used for latents-to-latents")
    init_image: str | None = InputField(default=None, description="The name of the initial image")
    vae: ModelIdentifierField | None = InputField(
        default=None, description="The VAE used for decoding, if the main model's default was not used"
    )
    hrf_enabled: bool | None = InputField(default=None, description="Whether high resolution fix was enabled")
    hrf_method: str | None = InputField(default=None, description="The high resolution fix upscale method")
    hrf_strength: float | None = InputField(default=None, description="The high resolution fix img2img strength")
    positive_style_prompt: str | None = InputField(default=None, description="The positive style prompt parameter")
    negative_style_prompt: str | None = InputField(default=None, description="The negative style prompt parameter")
    refiner_model: ModelIdentifierField | None = InputField(default=None, description="The SDXL Refiner model used")
    refiner_cfg_scale: float | None = InputField(default=None, description="The CFG scale used for the refiner")
    refiner_steps: int | None = InputField(default=None, description="The number of steps used for the refiner")
    refiner_scheduler: str | None = InputField(default=None, description="The scheduler used for the refiner")
    refiner_positive_aesthetic_score: float | None = InputField(default=None, description="The aesthetic score "
                                                                "used for the refiner")
    refiner_negative_aesthetic_score: float | None = InputField(default=None, description="The aesthetic score "
                                                                "used for the refiner")
    refiner_start: float | None = InputField(default=None, description="The start value used for refiner denoising")

    def invoke(self, context: InvocationContext) -> MetadataOutput:
        # As InvokeAI dumps it: unset fields left out, the undeclared ones kept.
        data = self.model_dump(mode="json", exclude_none=True, exclude=set(_NOT_METADATA))
        return MetadataOutput(metadata=data)


@invocation("metadata_item", title="Metadata Item", tags=["metadata"], category="metadata", version="1.0.1")
class MetadataItemInvocation(BaseInvocation):
    """Makes one metadata item: a label and any value."""

    label: str = InputField(description="Label for this metadata item")
    value: Any = InputField(default=None, description="The value for this metadata item (may be any type)")

    def invoke(self, context: InvocationContext) -> MetadataItemOutput:
        return MetadataItemOutput(item=MetadataItemField(label=self.label, value=self.value))


@invocation("metadata", title="Metadata", tags=["metadata"], category="metadata", version="1.0.1")
class MetadataInvocation(BaseInvocation):
    """Turns a metadata item, or a collection of them, into a metadata dict."""

    items: list[MetadataItemField] | MetadataItemField = InputField(description="A single metadata item or a "
                                                                    "collection of them")

    def invoke(self, context: InvocationContext) -> MetadataOutput:
        items = [self.items] if isinstance(self.items, MetadataItemField) else self.items
        return MetadataOutput(metadata={item.label: item.value for item in items})


@invocation("merge_metadata", title="Metadata Merge", tags=["metadata"], category="metadata", version="1.0.1")
class MergeMetadataInvocation(BaseInvocation):
    """Merges a collection of metadata dicts into one (later ones win on a shared key)."""

    collection: list[dict[str, Any]] = InputField(description="Collection of metadata dicts")

    def invoke(self, context: InvocationContext) -> MetadataOutput:
        merged: dict[str, Any] = {}
        for item in self.collection:
            merged.update(item)
        return MetadataOutput(metadata=merged)


NODES: list[type[BaseInvocation]] = [
    CoreMetadataInvocation, MergeMetadataInvocation, MetadataInvocation, MetadataItemInvocation,
]
