"""InvokeAI's model fields and loader outputs: the shapes, so packs import and connect them among themselves.

``LoRAField`` and FLUX's ``TransformerField`` / ``T5EncoderField`` are the SDK's own classes, so a pack's FLUX
loader connects to the host's FLUX nodes and back.

Their outputs' type ids are prefixed ``invokeai.``: the host's diffusers nodes declare their own loader outputs,
whose fields differ, under InvokeAI's plain ids.
"""

from __future__ import annotations

from typing import Any

from invoke_sdk.fields import LoRAField, ModelIdentifierField
from invoke_sdk.flux_fields import T5EncoderField, TransformerField
from pydantic import BaseModel, Field

from invokeai.app.invocations.baseinvocation import BaseInvocationOutput, invocation_output
from invokeai.app.invocations.fields import OutputField

__all__ = [
    "CLIPField",
    "CLIPOutput",
    "ControlLoRAField",
    "GlmEncoderField",
    "LoRAField",
    "LoRALoaderOutput",
    "ModelIdentifierField",
    "ModelLoaderOutput",
    "SDXLLoRALoaderOutput",
    "T5EncoderField",
    "TransformerField",
    "UNetField",
    "UNetOutput",
    "VAEField",
    "VAEOutput",
]


class UNetField(BaseModel):
    unet: ModelIdentifierField = Field(description="Info to load unet submodel")
    scheduler: ModelIdentifierField = Field(description="Info to load scheduler submodel")
    loras: list[LoRAField] = Field(default_factory=list, description="LoRAs to apply on model loading")
    seamless_axes: list[str] = Field(default_factory=list, description='Axes("x" and "y") to which apply seamless')
    freeu_config: Any = Field(default=None, description="FreeU configuration")


class CLIPField(BaseModel):
    tokenizer: ModelIdentifierField = Field(description="Info to load tokenizer submodel")
    text_encoder: ModelIdentifierField = Field(description="Info to load text_encoder submodel")
    skipped_layers: int = Field(default=0, description="Number of skipped layers in text_encoder")
    loras: list[LoRAField] = Field(default_factory=list, description="LoRAs to apply on model loading")


class GlmEncoderField(BaseModel):
    tokenizer: ModelIdentifierField = Field(description="Info to load tokenizer submodel")
    text_encoder: ModelIdentifierField = Field(description="Info to load text_encoder submodel")


class VAEField(BaseModel):
    vae: ModelIdentifierField = Field(description="Info to load vae submodel")
    seamless_axes: list[str] = Field(default_factory=list, description='Axes("x" and "y") to which apply seamless')


class ControlLoRAField(LoRAField):
    img: Any = Field(default=None, description="Image to use in structural conditioning")


@invocation_output("invokeai.unet_output")
class UNetOutput(BaseInvocationOutput):
    unet: UNetField = OutputField(description="UNet (scheduler, LoRAs)", title="UNet")


@invocation_output("invokeai.vae_output")
class VAEOutput(BaseInvocationOutput):
    vae: VAEField = OutputField(description="VAE", title="VAE")


@invocation_output("invokeai.clip_output")
class CLIPOutput(BaseInvocationOutput):
    clip: CLIPField = OutputField(description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count")


@invocation_output("invokeai.model_loader_output")
class ModelLoaderOutput(UNetOutput, CLIPOutput, VAEOutput):
    """Model loader output"""


@invocation_output("invokeai.lora_loader_output")
class LoRALoaderOutput(BaseInvocationOutput):
    unet: UNetField | None = OutputField(default=None, description="UNet (scheduler, LoRAs)", title="UNet")
    clip: CLIPField | None = OutputField(default=None, description="CLIP", title="CLIP")


@invocation_output("invokeai.sdxl_lora_loader_output")
class SDXLLoRALoaderOutput(BaseInvocationOutput):
    unet: UNetField | None = OutputField(default=None, description="UNet (scheduler, LoRAs)", title="UNet")
    clip: CLIPField | None = OutputField(default=None, description="CLIP 1", title="CLIP 1")
    clip2: CLIPField | None = OutputField(default=None, description="CLIP 2", title="CLIP 2")
