"""The standard node outputs, shared by every pack.

Two packs that both return "an image" must return the same output type, or the registry refuses
the second (one type id, one class). So the outputs that many packs produce live here, under the
type ids InvokeAI uses, and packs import them instead of declaring their own.
"""

from __future__ import annotations

from typing import Any

from invoke_sdk.fields import ConditioningField, ImageField, LatentsField, OutputField
from invoke_sdk.invocation import BaseInvocationOutput, invocation_output

__all__ = [
    "BooleanCollectionOutput",
    "BooleanOutput",
    "ConditioningOutput",
    "FloatCollectionOutput",
    "FloatOutput",
    "ImageCollectionOutput",
    "ImageOutput",
    "IntegerCollectionOutput",
    "IntegerOutput",
    "LatentsOutput",
    "StringCollectionOutput",
    "StringOutput",
]


@invocation_output("integer_output")
class IntegerOutput(BaseInvocationOutput):
    """A single integer."""

    value: int = OutputField(description="The output integer")


@invocation_output("integer_collection_output")
class IntegerCollectionOutput(BaseInvocationOutput):
    """A list of integers."""

    collection: list[int] = OutputField(description="The int collection")


@invocation_output("float_output")
class FloatOutput(BaseInvocationOutput):
    """A single float."""

    value: float = OutputField(description="The output float")


@invocation_output("float_collection_output")
class FloatCollectionOutput(BaseInvocationOutput):
    """A list of floats."""

    collection: list[float] = OutputField(description="The float collection")


@invocation_output("string_output")
class StringOutput(BaseInvocationOutput):
    """A single string."""

    value: str = OutputField(description="The output string")


@invocation_output("string_collection_output")
class StringCollectionOutput(BaseInvocationOutput):
    """A list of strings."""

    collection: list[str] = OutputField(description="The output strings")


@invocation_output("boolean_output")
class BooleanOutput(BaseInvocationOutput):
    """A single boolean."""

    value: bool = OutputField(description="The output boolean")


@invocation_output("boolean_collection_output")
class BooleanCollectionOutput(BaseInvocationOutput):
    """A list of booleans."""

    collection: list[bool] = OutputField(description="The output boolean collection")


@invocation_output("image_output")
class ImageOutput(BaseInvocationOutput):
    """One image and its size."""

    image: ImageField = OutputField(description="The output image")
    width: int = OutputField(description="The width of the image in pixels")
    height: int = OutputField(description="The height of the image in pixels")

    @classmethod
    def build(cls, image: Any, pil: Any = None) -> ImageOutput:
        """The output for a saved image.

        ``image`` is an :class:`ImageField` with ``pil`` the PIL image it was saved from (for its size), or
        anything that carries its own name and size: an image record, InvokeAI's ``ImageDTO`` (``image_name``,
        ``width``, ``height``), or an object with ``name``, ``width`` and ``height``.
        """
        name = getattr(image, "image_name", None) or getattr(image, "name", None)
        if not isinstance(name, str):
            raise TypeError(f"ImageOutput.build needs an image with an image_name (or name), not {image!r}")
        sized = pil if pil is not None else image
        width, height = getattr(sized, "width", None), getattr(sized, "height", None)
        if not (isinstance(width, int) and isinstance(height, int)):
            raise TypeError(
                f"ImageOutput.build needs the size of image {name!r}: pass the PIL image it was saved from, or "
                f"an image that has width and height (got {type(sized).__name__})"
            )
        return cls(image=ImageField(image_name=name), width=width, height=height)


@invocation_output("image_collection_output")
class ImageCollectionOutput(BaseInvocationOutput):
    """A list of images."""

    collection: list[ImageField] = OutputField(description="The output images")


@invocation_output("latents_output")
class LatentsOutput(BaseInvocationOutput):
    """Latents and the size of the image they make."""

    latents: LatentsField = OutputField(description="Latents tensor")
    width: int = OutputField(description="Width of the image the latents make, in pixels")
    height: int = OutputField(description="Height of the image the latents make, in pixels")

    @classmethod
    def build(cls, latents_name: str, latents: Any, seed: int | None = None) -> LatentsOutput:
        """The output for stored latents: the image size is the latents' last two dimensions times 8."""
        height, width = int(latents.shape[-2]) * 8, int(latents.shape[-1]) * 8
        return cls(latents=LatentsField(latents_name=latents_name, seed=seed), width=width, height=height)


@invocation_output("conditioning_output")
class ConditioningOutput(BaseInvocationOutput):
    """Encoded prompt conditioning."""

    conditioning: ConditioningField = OutputField(description="Conditioning tensor")
