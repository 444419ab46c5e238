"""InvokeAI's field declarations (``InputField``, ``OutputField``, UI hints, mixins) over invoke_sdk's.

``InputField`` and ``OutputField`` accept every argument InvokeAI's do and keep the UI hints (``ui_type``,
``ui_component``, ``ui_order``, ``ui_choice_labels``, ``ui_model_*``) in the field's JSON schema, where a
client reads them; ``strict`` and pydantic's numeric options reach pydantic.
"""

# ruff: noqa: UP042 - InvokeAI's enums are (str, Enum), whose str() and format() packs rely on; StrEnum differs

from __future__ import annotations

import re
from enum import Enum
from typing import Any

from invoke_sdk import fields as sdk_fields
from invoke_sdk.fields import ConditioningField, ImageField, Input, LatentsField, ModelIdentifierField
from invoke_sdk.flux_fields import FluxConditioningField
from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.fields import FieldInfo, PydanticUndefined

__all__ = [
    "BoardField",
    "BoundingBoxField",
    "ColorField",
    "ConditioningField",
    "DenoiseMaskField",
    "FieldDescriptions",
    "FieldKind",
    "FluxConditioningField",
    "ImageField",
    "Input",
    "InputField",
    "LatentsField",
    "MetadataField",
    "ModelIdentifierField",
    "OutputField",
    "UIComponent",
    "UIType",
    "WithBoard",
    "WithMetadata",
    "WithWorkflow",
]


class FieldKind(str, Enum):
    """InvokeAI's field kinds; ``Internal`` marks the mixins' fields (metadata, board) in the schema."""

    Input = "input"
    Output = "output"
    Internal = "internal"
    NodeAttribute = "node_attribute"


class UIComponent(str, Enum):
    """The widget a client draws for an input."""

    None_ = "none"
    Textarea = "textarea"
    Slider = "slider"
    VideoFrameIndex = "video-frame-index"


_UI_TYPES = (
    "Scheduler=SchedulerField Any=AnyField SavedWorkflow=SavedWorkflowField _Collection=CollectionField "
    "_CollectionItem=CollectionItemField _IsIntermediate=IsIntermediate"
).split()
_DEPRECATED_UI_TYPES = (
    "Boolean Color Conditioning Control Float Image Integer Latents String BooleanCollection ColorCollection "
    "ConditioningCollection ControlCollection FloatCollection ImageCollection IntegerCollection LatentsCollection "
    "StringCollection BooleanPolymorphic ColorPolymorphic ConditioningPolymorphic ControlPolymorphic "
    "FloatPolymorphic ImagePolymorphic IntegerPolymorphic LatentsPolymorphic StringPolymorphic UNet Vae CLIP "
    "Collection CollectionItem Enum WorkflowField BoardField MetadataItem MetadataItemCollection "
    "MetadataItemPolymorphic MetadataDict"
).split()
_DEPRECATED_MODEL_UI_TYPES = (
    "MainModel FluxMainModel SDXLMainModel SDXLRefinerModel ONNXModel VAEModel FluxVAEModel LoRAModel "
    "ControlNetModel IPAdapterModel CLIPEmbedModel CLIPLEmbedModel CLIPGEmbedModel SpandrelImageToImageModel "
    "ControlLoRAModel SigLipModel FluxReduxModel LlavaOnevisionModel FluxKontextModel RunwayModel T2IAdapterModel "
    "T5EncoderModel"
).split()

UIType = Enum(  # type: ignore[misc]  # functional API: the members are InvokeAI's names
    "UIType",
    [tuple(item.split("=")) for item in _UI_TYPES]
    + [(name, f"DEPRECATED_{name}") for name in _DEPRECATED_UI_TYPES]
    + [(name, f"DEPRECATED_{name}Field") for name in _DEPRECATED_MODEL_UI_TYPES],
    type=str,
)
UIType.__doc__ = "InvokeAI's ui_type hints, kept in the schema as ui_type (values as InvokeAI spells them)."


class _Descriptions(type):
    """Any attribute is a description: InvokeAI's list is long and packs name only a few of its entries."""

    def __getattr__(cls, name: str) -> str:
        if name.startswith("__"):
            raise AttributeError(name)
        words = re.sub(r"_+", " ", name).strip()
        return words[:1].upper() + words[1:]


class FieldDescriptions(metaclass=_Descriptions):
    """Descriptions of common inputs, by name: ``FieldDescriptions.denoising_start`` -> "Denoising start"."""

    width = "Width of output (px)"
    height = "Height of output (px)"
    seed = "Seed for random number generation"
    steps = "Number of steps to run"
    cfg_scale = "Classifier-Free Guidance scale"
    scheduler = "Scheduler to use during inference"
    image = "The image"
    images = "The images"
    latents = "Latents tensor"
    unet = "UNet (scheduler, LoRAs)"
    vae = "VAE"
    clip = "CLIP (tokenizer, text encoder, LoRAs) and skipped layer count"
    noise = "Noise tensor"
    positive_cond = "Positive conditioning tensor"
    negative_cond = "Negative conditioning tensor"
    board = "The board to save the image to"
    metadata = "Optional metadata to be saved with the image"
    main_model = "Main model (UNet, VAE, CLIP) to load"
    denoising_start = "When to start denoising, expressed a percentage of total steps"
    denoising_end = "When to stop denoising, expressed a percentage of total steps"
    mask = "The mask to use for the operation"
    fp32 = "Whether or not to use full float32 precision"
    lora_model = "LoRA model to load"
    lora_weight = "The weight at which the LoRA is applied to each model"
    vae_model = "VAE model to load"
    tiled = "Processing using overlapping tiles (reduce memory consumption)"
    num_1 = "The first number"
    num_2 = "The second number"
    core_metadata = "Optional core metadata to be written to image"


class _Unset:
    """No value given (``None`` is a value: ``InputField(default=None)`` makes the input optional)."""


_UNSET: Any = _Unset()


def _ui_hints(**hints: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in hints.items():
        if value is None or value is _UNSET:
            continue
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, list):
            value = [v.value if isinstance(v, Enum) else v for v in value]
        out[name] = value
    return out


def _pydantic_only(**options: Any) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not _UNSET and v is not None}


def InputField(  # noqa: N802 - InvokeAI's name
    default: Any = _UNSET,
    default_factory: Any = _UNSET,
    title: str | None = _UNSET,
    description: str | None = _UNSET,
    pattern: str | None = _UNSET,
    strict: bool | None = _UNSET,
    gt: float | None = _UNSET,
    ge: float | None = _UNSET,
    lt: float | None = _UNSET,
    le: float | None = _UNSET,
    multiple_of: float | None = _UNSET,
    allow_inf_nan: bool | None = _UNSET,
    max_digits: int | None = _UNSET,
    decimal_places: int | None = _UNSET,
    min_length: int | None = _UNSET,
    max_length: int | None = _UNSET,
    input: Input = Input.Any,  # noqa: A002 - InvokeAI's name
    ui_type: Any = None,
    ui_component: UIComponent | None = None,
    ui_hidden: bool | None = None,
    ui_order: int | None = None,
    ui_choice_labels: dict[str, str] | None = None,
    ui_model_base: Any = None,
    ui_model_type: Any = None,
    ui_model_variant: Any = None,
    ui_model_format: Any = None,
    ui_model_provider_id: Any = None,
    field_kind: FieldKind = FieldKind.Input,
) -> Any:
    """InvokeAI's ``InputField``: an input with its UI hints, on invoke_sdk's ``InputField``.

    Without a default the input is required (a value or an edge); ``default=None`` makes it optional, and the
    ``@invocation`` decorator widens a non-optional annotation to accept None, as InvokeAI does.
    """
    field = sdk_fields.InputField(
        PydanticUndefined if default is _UNSET else default,
        default_factory=None if default_factory is _UNSET else default_factory,
        title=None if title is _UNSET else title,
        description=None if description is _UNSET else description,
        input=Input(getattr(input, "value", input)),
        **_pydantic_only(gt=gt, ge=ge, lt=lt, le=le, multiple_of=multiple_of, min_length=min_length,
                         max_length=max_length, pattern=pattern),
        ui_hidden=bool(ui_hidden),
        ui_order=ui_order,
    )
    extra = field.json_schema_extra
    assert isinstance(extra, dict)
    extra.update(_ui_hints(ui_type=ui_type, ui_component=ui_component, ui_choice_labels=ui_choice_labels,
                           ui_model_base=ui_model_base, ui_model_type=ui_model_type,
                           ui_model_variant=ui_model_variant, ui_model_format=ui_model_format,
                           ui_model_provider_id=ui_model_provider_id))
    if field_kind is not FieldKind.Input:
        # The engine connects "input" fields only; InvokeAI's kind is kept for clients beside it.
        extra["invokeai_field_kind"] = field_kind.value
    more = _pydantic_only(strict=strict, allow_inf_nan=allow_inf_nan, max_digits=max_digits,
                          decimal_places=decimal_places)
    if more:
        return FieldInfo.merge_field_infos(field, Field(**more))  # type: ignore[arg-type]
    return field


def OutputField(  # noqa: N802 - InvokeAI's name
    default: Any = _UNSET,
    title: str | None = _UNSET,
    description: str | None = _UNSET,
    ui_type: Any = None,
    ui_hidden: bool = False,
    ui_order: int | None = None,
) -> Any:
    """InvokeAI's ``OutputField``, on invoke_sdk's, keeping ``ui_type`` and ``ui_order`` in the schema."""
    field = sdk_fields.OutputField(
        PydanticUndefined if default is _UNSET else default,
        title=None if title is _UNSET else title,
        description=None if description is _UNSET else description,
        ui_hidden=ui_hidden,
    )
    extra = field.json_schema_extra
    assert isinstance(extra, dict)
    extra.update(_ui_hints(ui_type=ui_type, ui_order=ui_order))
    return field


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BoardField(_Value):
    """A board, by id. Boards are not kept on Invoke Host: a board id is accepted and ignored (with a warning)."""

    board_id: str = Field(description="The id of the board")


class ColorField(_Value):
    """An RGBA color, each channel 0-255."""

    r: int = Field(ge=0, le=255, description="The red component")
    g: int = Field(ge=0, le=255, description="The green component")
    b: int = Field(ge=0, le=255, description="The blue component")
    a: int = Field(ge=0, le=255, description="The alpha component")

    def tuple(self) -> tuple[int, int, int, int]:
        """The color as an ``(r, g, b, a)`` tuple, as PIL takes it."""
        return (self.r, self.g, self.b, self.a)


class BoundingBoxField(_Value):
    """A box in image pixels, with an optional score."""

    x_min: int = Field(ge=0, description="The left x-coordinate of the bounding box (inclusive)")
    x_max: int = Field(ge=0, description="The right x-coordinate of the bounding box (exclusive)")
    y_min: int = Field(ge=0, description="The top y-coordinate of the bounding box (inclusive)")
    y_max: int = Field(ge=0, description="The bottom y-coordinate of the bounding box (exclusive)")
    score: float | None = Field(default=None, ge=0.0, le=1.0, description="The score of the bounding box")

    def tuple(self) -> tuple[int, int, int, int]:
        """The box as ``(x_min, y_min, x_max, y_max)``, as PIL's ``crop`` takes it."""
        return (self.x_min, self.y_min, self.x_max, self.y_max)


class DenoiseMaskField(_Value):
    """A denoise mask and the masked latents, by name."""

    mask_name: str = Field(description="The name of the mask image")
    masked_latents_name: str | None = Field(default=None, description="The name of the masked image latents")
    gradient: bool = Field(default=False, description="Used for gradient inpainting")


class MetadataField(RootModel[dict[str, Any]]):
    """Generation metadata: a JSON object, saved into the images a node makes."""


class WithMetadata(BaseModel):
    """Mixin: an optional ``metadata`` input, saved with the node's images by ``context.images.save``."""

    metadata: MetadataField | None = InputField(
        default=None, description=FieldDescriptions.metadata, input=Input.Connection, field_kind=FieldKind.Internal
    )


class WithWorkflow:
    """Mixin kept for old packs: the workflow is saved with every image without it (InvokeAI 4+ agrees)."""

    workflow = None


class WithBoard(BaseModel):
    """Mixin: an optional ``board`` input. Accepted and ignored with a warning: boards are not kept here."""

    board: BoardField | None = InputField(
        default=None, description=FieldDescriptions.board, input=Input.Direct, field_kind=FieldKind.Internal
    )


