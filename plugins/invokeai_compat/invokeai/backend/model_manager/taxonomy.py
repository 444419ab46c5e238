"""InvokeAI's model taxonomy: the enums model configs and ``ui_model_*`` hints use (InvokeAI's names and values)."""

# ruff: noqa: UP042 - InvokeAI's enums are (str, Enum), whose str() and format() packs rely on; StrEnum differs

from __future__ import annotations

from enum import Enum

__all__ = [
    "BaseModelType",
    "ClipVariantType",
    "FluxLoRAFormat",
    "FluxVariantType",
    "ModelFormat",
    "ModelRepoVariant",
    "ModelSourceType",
    "ModelType",
    "ModelVariantType",
    "SchedulerPredictionType",
    "SubModelType",
]


class BaseModelType(str, Enum):
    """InvokeAI's BaseModelType."""

    Any = "any"
    StableDiffusion1 = "sd-1"
    StableDiffusion2 = "sd-2"
    StableDiffusion3 = "sd-3"
    StableDiffusionXL = "sdxl"
    StableDiffusionXLRefiner = "sdxl-refiner"
    Flux = "flux"
    Flux2 = "flux2"
    CogView4 = "cogview4"
    ZImage = "z-image"
    ErnieImage = "ernie-image"
    Ideogram4 = "ideogram-4"
    External = "external"
    QwenImage = "qwen-image"
    Anima = "anima"
    Krea2 = "krea-2"
    Wan = "wan"
    Unknown = "unknown"


class ModelType(str, Enum):
    """InvokeAI's ModelType."""

    ONNX = "onnx"
    Main = "main"
    VAE = "vae"
    LoRA = "lora"
    ControlLoRa = "control_lora"
    ControlNet = "controlnet"
    TextualInversion = "embedding"
    IPAdapter = "ip_adapter"
    CLIPVision = "clip_vision"
    CLIPEmbed = "clip_embed"
    T2IAdapter = "t2i_adapter"
    T5Encoder = "t5_encoder"
    Qwen3Encoder = "qwen3_encoder"
    QwenVLEncoder = "qwen_vl_encoder"
    Qwen3VLEncoder = "qwen3_vl_encoder"
    MistralEncoder = "mistral_encoder"
    WanT5Encoder = "wan_t5_encoder"
    Gemma2Encoder = "gemma2_encoder"
    SpandrelImageToImage = "spandrel_image_to_image"
    SigLIP = "siglip"
    FluxRedux = "flux_redux"
    LlavaOnevision = "llava_onevision"
    PromptEnhancer = "prompt_enhancer"
    TextLLM = "text_llm"
    ExternalImageGenerator = "external_image_generator"
    PiDDecoder = "pid_decoder"
    Unknown = "unknown"


class SubModelType(str, Enum):
    """InvokeAI's SubModelType."""

    UNet = "unet"
    Transformer = "transformer"
    Transformer2 = "transformer_2"
    TextEncoder = "text_encoder"
    TextEncoder2 = "text_encoder_2"
    TextEncoder3 = "text_encoder_3"
    Tokenizer = "tokenizer"
    Tokenizer2 = "tokenizer_2"
    Tokenizer3 = "tokenizer_3"
    PromptEnhancer = "pe"
    PromptEnhancerTokenizer = "pe_tokenizer"
    VAE = "vae"
    VAEDecoder = "vae_decoder"
    VAEEncoder = "vae_encoder"
    Scheduler = "scheduler"
    SafetyChecker = "safety_checker"


class ClipVariantType(str, Enum):
    """InvokeAI's ClipVariantType."""

    L = "large"
    G = "gigantic"


class ModelVariantType(str, Enum):
    """InvokeAI's ModelVariantType."""

    Normal = "normal"
    Inpaint = "inpaint"
    Depth = "depth"


class FluxVariantType(str, Enum):
    """InvokeAI's FluxVariantType."""

    Schnell = "schnell"
    Dev = "dev"
    DevFill = "dev_fill"


class ModelFormat(str, Enum):
    """InvokeAI's ModelFormat."""

    OMI = "omi"
    Diffusers = "diffusers"
    Checkpoint = "checkpoint"
    LyCORIS = "lycoris"
    ONNX = "onnx"
    Olive = "olive"
    EmbeddingFile = "embedding_file"
    EmbeddingFolder = "embedding_folder"
    InvokeAI = "invokeai"
    T5Encoder = "t5_encoder"
    Qwen3Encoder = "qwen3_encoder"
    QwenVLEncoder = "qwen_vl_encoder"
    Qwen3VLEncoder = "qwen3_vl_encoder"
    MistralEncoder = "mistral_encoder"
    WanT5Encoder = "wan_t5_encoder"
    Gemma2Encoder = "gemma2_encoder"
    BnbQuantizedLlmInt8b = "bnb_quantized_int8b"
    BnbQuantizednf4b = "bnb_quantized_nf4b"
    GGUFQuantized = "gguf_quantized"
    ExternalApi = "external_api"
    SDNQQuantized = "sdnq_quantized"
    Unknown = "unknown"


class SchedulerPredictionType(str, Enum):
    """InvokeAI's SchedulerPredictionType."""

    Epsilon = "epsilon"
    VPrediction = "v_prediction"
    Sample = "sample"


class ModelRepoVariant(str, Enum):
    """InvokeAI's ModelRepoVariant."""

    Default = ""
    FP16 = "fp16"
    FP32 = "fp32"
    ONNX = "onnx"
    OpenVINO = "openvino"
    Flax = "flax"


class ModelSourceType(str, Enum):
    """InvokeAI's ModelSourceType."""

    Path = "path"
    Url = "url"
    HFRepoID = "hf_repo_id"
    External = "external"


class FluxLoRAFormat(str, Enum):
    """InvokeAI's FluxLoRAFormat."""

    Diffusers = "flux.diffusers"
    Kohya = "flux.kohya"
    OneTrainer = "flux.onetrainer"
    Control = "flux.control"
    AIToolkit = "flux.aitoolkit"
    XLabs = "flux.xlabs"
    BflPeft = "flux.bfl_peft"
    OneTrainerBfl = "flux.onetrainer_bfl"
