"""Entry-point module: registers the SD family's config classes and probers. Imports nothing heavy."""

from __future__ import annotations

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterModelConfig, RegisterModelProber
from invoke_sdk.models import STANDARD_MODEL_CONFIGS

from invoke_sd_probers.control import (
    ControlNetCheckpointProber,
    ControlNetDiffusersProber,
    T2IAdapterCheckpointProber,
    T2IAdapterDiffusersProber,
)
from invoke_sd_probers.embeddings import EmbeddingFileProber, EmbeddingFolderProber
from invoke_sd_probers.flux_files import (
    CLIPEmbedCheckpointProber,
    FluxTransformerCheckpointProber,
    FluxVAECheckpointProber,
    T5EncoderCheckpointProber,
)
from invoke_sd_probers.flux_folders import (
    CLIPEmbedFolderProber,
    FluxPipelineProber,
    FluxVAEFolderProber,
    T5EncoderFolderProber,
)
from invoke_sd_probers.flux_lora import FluxLoRADiffusersProber, FluxLoRAFileProber
from invoke_sd_probers.ip_adapter import CLIPVisionProber, IPAdapterCheckpointProber, IPAdapterFolderProber
from invoke_sd_probers.lora import LoRADiffusersProber, LoRAFileProber
from invoke_sd_probers.main_models import MainCheckpointProber, MainDiffusersProber
from invoke_sd_probers.vae import VAECheckpointProber, VAEDiffusersProber

__all__ = ["PROBERS", "register_model_configs", "register_model_probers"]

PROBERS = (
    LoRAFileProber,
    LoRADiffusersProber,
    EmbeddingFileProber,
    EmbeddingFolderProber,
    ControlNetCheckpointProber,
    ControlNetDiffusersProber,
    T2IAdapterCheckpointProber,
    T2IAdapterDiffusersProber,
    IPAdapterCheckpointProber,
    IPAdapterFolderProber,
    CLIPVisionProber,
    VAECheckpointProber,
    VAEDiffusersProber,
    MainCheckpointProber,
    MainDiffusersProber,
    FluxPipelineProber,
    T5EncoderFolderProber,
    CLIPEmbedFolderProber,
    FluxVAEFolderProber,
    # FLUX.1 single files and LoRAs (#15 item 6).
    FluxLoRAFileProber,
    FluxLoRADiffusersProber,
    FluxTransformerCheckpointProber,
    FluxVAECheckpointProber,
    CLIPEmbedCheckpointProber,
    T5EncoderCheckpointProber,
)


@hookimpl
def register_model_configs(register: RegisterModelConfig) -> None:
    for config in STANDARD_MODEL_CONFIGS:
        register(config)


@hookimpl
def register_model_probers(register: RegisterModelProber) -> None:
    for prober in PROBERS:
        register(prober())
