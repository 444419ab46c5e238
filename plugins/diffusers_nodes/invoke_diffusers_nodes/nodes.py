"""Every node of this plugin, in the order they are registered."""

from __future__ import annotations

from invoke_sdk import BaseInvocation

from invoke_diffusers_nodes.clip_skip_node import CLIPSkipInvocation
from invoke_diffusers_nodes.control_nodes import ControlNetInvocation, IPAdapterInvocation, T2IAdapterInvocation
from invoke_diffusers_nodes.denoise_node import DenoiseLatentsInvocation
from invoke_diffusers_nodes.flux_lora_node import FluxLoRALoaderInvocation
from invoke_diffusers_nodes.flux_nodes import (
    FluxDenoiseInvocation,
    FluxModelLoaderInvocation,
    FluxTextEncoderInvocation,
    FluxVaeDecodeInvocation,
    FluxVaeEncodeInvocation,
)
from invoke_diffusers_nodes.mask_nodes import CreateDenoiseMaskInvocation, CreateGradientMaskInvocation
from invoke_diffusers_nodes.model_nodes import (
    LoRALoaderInvocation,
    MainModelLoaderInvocation,
    SchedulerInvocation,
    SDXLLoRALoaderInvocation,
    SDXLModelLoaderInvocation,
    VAELoaderInvocation,
)
from invoke_diffusers_nodes.noise_node import NoiseInvocation
from invoke_diffusers_nodes.prompt_nodes import CompelInvocation, SDXLCompelPromptInvocation
from invoke_diffusers_nodes.refiner_nodes import SDXLRefinerCompelPromptInvocation, SDXLRefinerModelLoaderInvocation
from invoke_diffusers_nodes.vae_nodes import ImageToLatentsInvocation, LatentsToImageInvocation

__all__ = ["ALL_NODES"]

ALL_NODES: list[type[BaseInvocation]] = [
    MainModelLoaderInvocation,
    SDXLModelLoaderInvocation,
    VAELoaderInvocation,
    LoRALoaderInvocation,
    SDXLLoRALoaderInvocation,
    SchedulerInvocation,
    CompelInvocation,
    SDXLCompelPromptInvocation,
    NoiseInvocation,
    DenoiseLatentsInvocation,
    LatentsToImageInvocation,
    ImageToLatentsInvocation,
    ControlNetInvocation,
    T2IAdapterInvocation,
    IPAdapterInvocation,
    # Inpainting, CLIP skip and the SDXL refiner (#15).
    CreateDenoiseMaskInvocation,
    CreateGradientMaskInvocation,
    CLIPSkipInvocation,
    SDXLRefinerModelLoaderInvocation,
    SDXLRefinerCompelPromptInvocation,
    # FLUX.1 through diffusers (#15).
    FluxModelLoaderInvocation,
    FluxTextEncoderInvocation,
    FluxDenoiseInvocation,
    FluxVaeDecodeInvocation,
    FluxVaeEncodeInvocation,
    # LoRA on FLUX (#15 item 6).
    FluxLoRALoaderInvocation,
]
