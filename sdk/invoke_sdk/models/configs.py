"""The model taxonomy and the model config classes that records hold.

A model config says what a model on disk is (type, base architecture, format, variant ...) and
where it lies. Configs form a discriminated union on ``type`` and ``format`` together: each
concrete class pins both with ``Literal`` annotations, and the host builds the union of every
class that plugins register through ``register_model_configs`` when the registry freezes.

The classes for the Stable Diffusion family live here, so that loaders and nodes in any plugin
can import them; the first-party prober plugin registers them.
"""

from __future__ import annotations

import typing
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "STANDARD_MODEL_CONFIGS",
    "BaseModelType",
    "CLIPVisionDiffusersConfig",
    "CheckpointConfigBase",
    "ControlNetCheckpointConfig",
    "ControlNetDiffusersConfig",
    "DiffusersConfigBase",
    "IPAdapterCheckpointConfig",
    "IPAdapterInvokeAIConfig",
    "LoRADiffusersConfig",
    "LoRALyCORISConfig",
    "MainCheckpointConfig",
    "MainConfigBase",
    "MainDiffusersConfig",
    "ModelConfigBase",
    "ModelFormat",
    "ModelRepoVariant",
    "ModelSourceType",
    "ModelType",
    "ModelVariantType",
    "SchedulerPredictionType",
    "T2IAdapterCheckpointConfig",
    "T2IAdapterDiffusersConfig",
    "TextualInversionFileConfig",
    "TextualInversionFolderConfig",
    "VAECheckpointConfig",
    "VAEDiffusersConfig",
    "config_tag",
    "model_config_tag",
]


class BaseModelType(StrEnum):
    """The architecture a model belongs to: which other models it works with."""

    Any = "any"
    StableDiffusion1 = "sd-1"
    StableDiffusion2 = "sd-2"
    StableDiffusionXL = "sdxl"
    StableDiffusionXLRefiner = "sdxl-refiner"
    Flux = "flux"
    """FLUX.1 (Black Forest Labs): a flow-matching transformer read with CLIP-L and T5-XXL, and a 16-channel VAE."""


class ModelType(StrEnum):
    """What a model does."""

    Main = "main"
    VAE = "vae"
    LoRA = "lora"
    TextualInversion = "embedding"
    ControlNet = "controlnet"
    T2IAdapter = "t2i_adapter"
    IPAdapter = "ip_adapter"
    CLIPVision = "clip_vision"
    SpandrelImageToImage = "spandrel_image_to_image"
    """An image-to-image model (upscaler, restorer) of an architecture the spandrel library knows."""
    T5Encoder = "t5_encoder"
    """A T5 text encoder with its tokenizer (FLUX reads T5-XXL's token embeddings)."""
    CLIPEmbed = "clip_embed"
    """A CLIP text encoder used for its pooled embedding (FLUX reads CLIP-L's)."""


class ModelFormat(StrEnum):
    """How a model is laid out on disk."""

    Checkpoint = "checkpoint"
    """One file in the original (LDM / reference implementation) key layout."""
    Diffusers = "diffusers"
    """A folder in the diffusers (or transformers) layout with config.json / model_index.json."""
    LyCORIS = "lycoris"
    """One LoRA file (kohya, LyCORIS or diffusers/peft key names)."""
    EmbeddingFile = "embedding_file"
    EmbeddingFolder = "embedding_folder"
    InvokeAI = "invokeai"
    """InvokeAI's IP-adapter folder: ``ip_adapter.bin`` + ``image_encoder.txt``."""


class ModelVariantType(StrEnum):
    """The UNet input layout of a main model."""

    Normal = "normal"
    Inpaint = "inpaint"
    Depth = "depth"
    FluxDev = "dev"
    """FLUX.1 dev: guidance-distilled (a guidance value goes into the transformer), many steps, shifted schedule."""
    FluxSchnell = "schnell"
    """FLUX.1 schnell: timestep-distilled, a few steps, no guidance input."""
    FluxDevFill = "dev_fill"
    """FLUX.1 Fill dev: dev with the masked image and mask as extra input channels (inpainting)."""


class SchedulerPredictionType(StrEnum):
    """What the UNet was trained to predict."""

    Epsilon = "epsilon"
    VPrediction = "v_prediction"
    Sample = "sample"


class ModelRepoVariant(StrEnum):
    """Which weight files of a Hugging Face repo to fetch (``fp16`` picks ``*.fp16.*`` files)."""

    Default = ""
    FP16 = "fp16"
    FP32 = "fp32"


class ModelSourceType(StrEnum):
    """Where a model was installed from."""

    Path = "path"
    Url = "url"
    HFRepoID = "hf_repo_id"


class ModelConfigBase(BaseModel):
    """Fields every model record has. Concrete classes pin ``type`` and ``format`` with ``Literal``.

    ``key`` derives from the content hash, so one model installed twice is recognised as one.
    """

    model_config = ConfigDict(use_enum_values=False, validate_assignment=True, protected_namespaces=())

    key: str = Field(description="Unique key, derived from the content hash")
    hash: str = Field(description="Content hash of the model's files, as '<algorithm>:<hex digest>'")
    name: str = Field(description="Name shown to people")
    base: BaseModelType = Field(description="Base architecture")
    type: ModelType = Field(description="What the model does")
    format: ModelFormat = Field(description="How the model is laid out on disk")
    path: str = Field(description="File or folder; relative paths are inside the models directory")
    source: str = Field(description="What the model was installed from: a path, URL or repo id")
    source_type: ModelSourceType = Field(description="Kind of source")
    description: str | None = Field(default=None, description="Free text")
    file_size: int = Field(default=0, ge=0, description="Bytes on disk (all files of a folder)")
    imohash: str | None = Field(
        default=None, description="Cheap change check (size + samples) compared on sync; not an identity"
    )
    inplace: bool | None = Field(
        default=None,
        description=(
            "True: registered where its files lay, so deleting the model only removes this record. False: the "
            "host placed the files in the models directory, and deleting the model removes them. None: recorded "
            "before this was tracked; the host decides when it starts, and until then treats it as True"
        ),
    )

    tag_separator: ClassVar[str] = "."

    @classmethod
    def tag(cls) -> str:
        """The union tag of this class: ``'<type>.<format>'`` from its ``Literal`` annotations."""
        parts = []
        for name in ("type", "format"):
            annotation = cls._tag_annotation(name)
            args = typing.get_args(annotation)
            if typing.get_origin(annotation) is not Literal or len(args) != 1:
                raise TypeError(f"{cls.__qualname__}.{name} must be annotated as Literal[<one value>]")
            parts.append(str(args[0].value if isinstance(args[0], StrEnum) else args[0]))
        return cls.tag_separator.join(parts)

    @classmethod
    def _tag_annotation(cls, name: str) -> Any:
        """The annotation of field ``name``: the one pydantic resolved when it built the class, else the class's
        type hints (a field pydantic could not resolve yet, or none of that name)."""
        # typing.get_type_hints evaluates every string annotation of the class and its bases again (1-2 ms a
        # class; the registry asks it of each config class at every start), which pydantic has already done.
        field = cls.model_fields.get(name)
        if field is not None and typing.get_origin(field.annotation) is Literal:
            return field.annotation
        return typing.get_type_hints(cls).get(name)


def config_tag(type: str, format: str) -> str:  # noqa: A002 - the field names
    """The union tag for a type and format."""
    return f"{type}{ModelConfigBase.tag_separator}{format}"


def model_config_tag(value: Any) -> str | None:
    """The discriminator function of the config union: works on dicts and on config objects."""
    if isinstance(value, dict):
        type_, format_ = value.get("type"), value.get("format")
    else:
        type_, format_ = getattr(value, "type", None), getattr(value, "format", None)
    if type_ is None or format_ is None:
        return None
    return config_tag(str(getattr(type_, "value", type_)), str(getattr(format_, "value", format_)))


class CheckpointConfigBase(BaseModel):
    """Mixin for single-file models in the original key layout."""

    config_path: str | None = Field(
        default=None, description="Original (LDM) config file to convert or load with, when one is needed"
    )


class DiffusersConfigBase(BaseModel):
    """Mixin for diffusers folders."""

    repo_variant: ModelRepoVariant = Field(default=ModelRepoVariant.Default, description="Weights variant fetched")


class MainConfigBase(BaseModel):
    """Mixin for main (denoising) models. ``variant`` is the input layout for SD, the distillation for FLUX."""

    variant: ModelVariantType = Field(default=ModelVariantType.Normal)
    prediction_type: SchedulerPredictionType = Field(default=SchedulerPredictionType.Epsilon)
    upcast_attention: bool = Field(default=False)


class MainCheckpointConfig(CheckpointConfigBase, MainConfigBase, ModelConfigBase):
    """A main model in one file (``.safetensors`` or a scanned legacy pickle)."""

    type: Literal[ModelType.Main]
    format: Literal[ModelFormat.Checkpoint]


class MainDiffusersConfig(DiffusersConfigBase, MainConfigBase, ModelConfigBase):
    """A main model as a diffusers pipeline folder."""

    type: Literal[ModelType.Main]
    format: Literal[ModelFormat.Diffusers]


class VAECheckpointConfig(CheckpointConfigBase, ModelConfigBase):
    type: Literal[ModelType.VAE]
    format: Literal[ModelFormat.Checkpoint]


class VAEDiffusersConfig(DiffusersConfigBase, ModelConfigBase):
    type: Literal[ModelType.VAE]
    format: Literal[ModelFormat.Diffusers]


class LoRALyCORISConfig(ModelConfigBase):
    """A LoRA in one file; ``layout`` says whose key names it uses."""

    type: Literal[ModelType.LoRA]
    format: Literal[ModelFormat.LyCORIS]
    layout: Literal["kohya", "diffusers", "peft", "lycoris"] = "kohya"


class LoRADiffusersConfig(ModelConfigBase):
    type: Literal[ModelType.LoRA]
    format: Literal[ModelFormat.Diffusers]


class TextualInversionFileConfig(ModelConfigBase):
    type: Literal[ModelType.TextualInversion]
    format: Literal[ModelFormat.EmbeddingFile]


class TextualInversionFolderConfig(ModelConfigBase):
    type: Literal[ModelType.TextualInversion]
    format: Literal[ModelFormat.EmbeddingFolder]


class ControlNetCheckpointConfig(CheckpointConfigBase, ModelConfigBase):
    type: Literal[ModelType.ControlNet]
    format: Literal[ModelFormat.Checkpoint]


class ControlNetDiffusersConfig(DiffusersConfigBase, ModelConfigBase):
    type: Literal[ModelType.ControlNet]
    format: Literal[ModelFormat.Diffusers]


class T2IAdapterCheckpointConfig(ModelConfigBase):
    type: Literal[ModelType.T2IAdapter]
    format: Literal[ModelFormat.Checkpoint]


class T2IAdapterDiffusersConfig(DiffusersConfigBase, ModelConfigBase):
    type: Literal[ModelType.T2IAdapter]
    format: Literal[ModelFormat.Diffusers]


class IPAdapterCheckpointConfig(ModelConfigBase):
    type: Literal[ModelType.IPAdapter]
    format: Literal[ModelFormat.Checkpoint]


class IPAdapterInvokeAIConfig(ModelConfigBase):
    type: Literal[ModelType.IPAdapter]
    format: Literal[ModelFormat.InvokeAI]
    image_encoder_model_id: str | None = Field(default=None, description="The CLIP vision encoder it needs")


class CLIPVisionDiffusersConfig(DiffusersConfigBase, ModelConfigBase):
    type: Literal[ModelType.CLIPVision]
    format: Literal[ModelFormat.Diffusers]


class T5EncoderDiffusersConfig(DiffusersConfigBase, ModelConfigBase):
    """A T5 encoder folder: a transformers ``T5EncoderModel`` (``config.json`` + weights) and its tokenizer.

    Either the folder itself or a FLUX pipeline's ``text_encoder_2``/``tokenizer_2`` pair laid out as
    InvokeAI does.
    """

    type: Literal[ModelType.T5Encoder]
    format: Literal[ModelFormat.Diffusers]


class T5EncoderCheckpointConfig(CheckpointConfigBase, ModelConfigBase):
    """A T5 encoder in one file (e.g. ``t5xxl_fp16.safetensors``); its tokenizer comes from ``config_path``."""

    type: Literal[ModelType.T5Encoder]
    format: Literal[ModelFormat.Checkpoint]


class CLIPEmbedDiffusersConfig(DiffusersConfigBase, ModelConfigBase):
    """A CLIP text encoder folder (``CLIPTextModel`` + tokenizer) used for its pooled embedding."""

    type: Literal[ModelType.CLIPEmbed]
    format: Literal[ModelFormat.Diffusers]


class CLIPEmbedCheckpointConfig(CheckpointConfigBase, ModelConfigBase):
    """A CLIP text encoder in one file (e.g. ``clip_l.safetensors``); its tokenizer comes from ``config_path``."""

    type: Literal[ModelType.CLIPEmbed]
    format: Literal[ModelFormat.Checkpoint]


STANDARD_MODEL_CONFIGS: tuple[type[ModelConfigBase], ...] = (
    MainCheckpointConfig,
    MainDiffusersConfig,
    VAECheckpointConfig,
    VAEDiffusersConfig,
    LoRALyCORISConfig,
    LoRADiffusersConfig,
    TextualInversionFileConfig,
    TextualInversionFolderConfig,
    ControlNetCheckpointConfig,
    ControlNetDiffusersConfig,
    T2IAdapterCheckpointConfig,
    T2IAdapterDiffusersConfig,
    IPAdapterCheckpointConfig,
    IPAdapterInvokeAIConfig,
    CLIPVisionDiffusersConfig,
    T5EncoderDiffusersConfig,
    T5EncoderCheckpointConfig,
    CLIPEmbedDiffusersConfig,
    CLIPEmbedCheckpointConfig,
)
"""The Stable Diffusion and FLUX families' config classes, registered by the first-party prober plugin."""
