"""Declaring node inputs and outputs, and the field types that cross node boundaries."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

__all__ = [
    "ConditioningField",
    "FieldKind",
    "ImageField",
    "Input",
    "InputField",
    "LatentsField",
    "LoRAField",
    "ModelIdentifierField",
    "OutputField",
    "TensorField",
    "field_extra",
]


class Input(StrEnum):
    """Where an input's value may come from."""

    Direct = "direct"
    """Only a value written in the graph; an edge into it is refused."""
    Connection = "connection"
    """Only an edge from another node's output; a value written in the graph is refused."""
    Any = "any"
    """Either a value written in the graph or an edge, not both."""


class FieldKind(StrEnum):
    """Whether a model field is a node input, a node output, or internal to the node."""

    Input = "input"
    Output = "output"
    NodeAttribute = "node_attribute"


def InputField(  # noqa: N802 - reads like pydantic's Field, which it wraps
    default: Any = PydanticUndefined,
    *,
    default_factory: Any = None,
    title: str | None = None,
    description: str | None = None,
    input: Input = Input.Any,  # noqa: A002 - the name InvokeAI node authors know
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    multiple_of: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    ui_hidden: bool = False,
    ui_order: int | None = None,
) -> Any:
    """Declare a node input.

    An input without a default is required, but its value may arrive through an edge, so the
    node model itself accepts it missing; the engine reports a required input that has neither
    a value nor an edge when the graph is validated. Constraints (``gt``, ``le``, ``max_length``
    ...) are checked both for values written in the graph and for values arriving through edges.
    """
    required = default is PydanticUndefined and default_factory is None
    extra: dict[str, Any] = {
        "field_kind": FieldKind.Input.value,
        "input": input.value,
        "orig_required": required,
    }
    if ui_hidden:
        extra["ui_hidden"] = True
    if ui_order is not None:
        extra["ui_order"] = ui_order
    kwargs: dict[str, Any] = {
        "title": title,
        "description": description,
        "gt": gt,
        "ge": ge,
        "lt": lt,
        "le": le,
        "multiple_of": multiple_of,
        "min_length": min_length,
        "max_length": max_length,
        "pattern": pattern,
        "json_schema_extra": extra,
    }
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    # FieldInfo.from_field is what pydantic's Field() ends in; Field() itself only checks the keywords of pydantic
    # 1 that these never pass, at three times the cost (a pack's every input; bench/startup.py).
    if default_factory is not None:
        return FieldInfo.from_field(default_factory=default_factory, **kwargs)
    # A required input may be filled by an edge, so the model must accept it missing.
    return FieldInfo.from_field(None if required else default, **kwargs)


def OutputField(  # noqa: N802 - reads like pydantic's Field, which it wraps
    default: Any = PydanticUndefined,
    *,
    title: str | None = None,
    description: str | None = None,
    ui_hidden: bool = False,
) -> Any:
    """Declare a field of a node's output class."""
    extra: dict[str, Any] = {"field_kind": FieldKind.Output.value}
    if ui_hidden:
        extra["ui_hidden"] = True
    return FieldInfo.from_field(default, title=title, description=description, json_schema_extra=extra)


def field_extra(field: Any) -> dict[str, Any]:
    """The ``InputField`` / ``OutputField`` metadata of a pydantic ``FieldInfo`` (empty if none)."""
    extra = getattr(field, "json_schema_extra", None)
    return dict(extra) if isinstance(extra, dict) else {}


class _CrossNodeField(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ImageField(_CrossNodeField):
    """A reference to an image in the host's image store."""

    image_name: str = Field(description="The name of the image in the image store")


class TensorField(_CrossNodeField):
    """A reference to a tensor kept by the host between nodes."""

    tensor_name: str = Field(description="The name of the stored tensor")


class LatentsField(_CrossNodeField):
    """A reference to latents kept by the host between nodes."""

    latents_name: str = Field(description="The name of the stored latents")
    seed: int | None = Field(default=None, description="The seed used to make the latents, if known")
    metadata: dict[str, Any] | None = Field(
        default=None,
        description="How the latents were made (generation metadata with InvokeAI's core metadata field names), "
        "if the node that made them says: a node that saves an image from them without metadata of its own saves "
        "this",
    )


class ConditioningField(_CrossNodeField):
    """A reference to prompt conditioning kept by the host between nodes."""

    conditioning_name: str = Field(description="The name of the stored conditioning")


class ModelIdentifierField(_CrossNodeField):
    """A reference to an installed model, and optionally one of its submodels."""

    key: str = Field(description="The model's key in the model records")
    hash: str | None = Field(default=None, description="The model's content hash")
    name: str | None = Field(default=None, description="The model's name")
    base: str | None = Field(default=None, description="The model's base architecture")
    type: str | None = Field(default=None, description="The model's type")
    submodel_type: str | None = Field(default=None, description="The submodel to load, if any")


class LoRAField(BaseModel):
    """A LoRA to apply, and how strongly: the entries of the ``loras`` list that model fields (a FLUX transformer,
    a text encoder, a UNet) carry from the LoRA loader nodes to the node that patches them in.

    Not frozen, unlike the references above: InvokeAI's nodes and packs copy a model field and append to its
    ``loras`` in place.
    """

    lora: ModelIdentifierField = Field(description="The LoRA model")
    weight: float = Field(description="How strongly to apply the LoRA")
