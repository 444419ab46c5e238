"""The image nodes. Type ids and field names are InvokeAI's where the node does the same thing.

Every node that makes an image saves it through ``context.images.save``; the host records the
session, node and graph with it, and a node whose ``is_intermediate`` is set saves intermediates.

A node whose result's size follows from its inputs refuses one of more than the host's
``max_image_pixels`` before it allocates it: when the graph is validated, for sizes written in the graph
(validators read the limits from the validation context), and when it runs (``context.config``).
"""

from __future__ import annotations

from typing import Any, Literal

from invoke_sdk import (
    BaseInvocation,
    ImageField,
    InputField,
    InvocationContext,
    invocation,
)
from invoke_sdk.limits import check_limit
from invoke_sdk.outputs import ImageCollectionOutput, ImageOutput
from pydantic import BaseModel, Field, ValidationInfo, model_validator

__all__ = [
    "NODES",
    "BlankImageInvocation",
    "ColorField",
    "ImageBlurInvocation",
    "ImageChannelInvocation",
    "ImageCollectionInvocation",
    "ImageCollectionOutput",
    "ImageConvertInvocation",
    "ImageCropInvocation",
    "ImageInvertInvocation",
    "ImageInvocation",
    "ImageOutput",
    "ImagePasteInvocation",
    "ImageResizeInvocation",
    "ImageScaleInvocation",
    "SaveImageInvocation",
]

PIL_RESAMPLING_MODES = Literal["nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"]


def _resampling(mode: str) -> Any:
    """Pillow's filter for a ``PIL_RESAMPLING_MODES`` name, looked up when a node resizes (Pillow kept off start-up:
    a module-level table of ``Image.Resampling`` imported it with the plugin)."""
    from PIL import Image

    return Image.Resampling[mode.upper()]


# InvokeAI also offers CMYK, YCbCr, LAB, HSV and F, which a PNG cannot hold: such a node could
# never save its result, so those modes are refused when the graph is validated instead.
IMAGE_MODES = Literal["1", "L", "LA", "I", "RGB", "RGBA"]
IMAGE_CHANNELS = Literal["A", "R", "G", "B"]


class ColorField(BaseModel):
    """An RGBA color, each channel 0 to 255."""

    r: int = Field(ge=0, le=255, description="Red")
    g: int = Field(ge=0, le=255, description="Green")
    b: int = Field(ge=0, le=255, description="Blue")
    a: int = Field(ge=0, le=255, description="Alpha")

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.r, self.g, self.b, self.a)


def _check_pixels(width: int, height: int, settings: Any) -> None:
    check_limit(width * height, "max_image_pixels", settings, f"the pixel count of a {width}x{height} image")


def _save(node: BaseInvocation, context: InvocationContext, image: Any, **kwargs: Any) -> ImageOutput:
    field = context.images.save(image, is_intermediate=node.is_intermediate, **kwargs)
    return ImageOutput.build(field, image)


@invocation("image", title="Image Primitive", tags=["primitives", "image", "load"], category="primitives")
class ImageInvocation(BaseInvocation):
    """Load a stored image and pass it on (InvokeAI's image primitive)."""

    image: ImageField = InputField(description="The image to load")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        image = context.images.get_pil(self.image.image_name)
        return ImageOutput.build(ImageField(image_name=self.image.image_name), image)


@invocation("blank_image", title="Blank Image", tags=["image"], category="image")
class BlankImageInvocation(BaseInvocation):
    """Create an image of one color."""

    width: int = InputField(default=512, gt=0, le=16384, description="The width of the image")
    height: int = InputField(default=512, gt=0, le=16384, description="The height of the image")
    mode: Literal["RGB", "RGBA"] = InputField(default="RGB", description="The mode of the image")
    color: ColorField = InputField(default=ColorField(r=0, g=0, b=0, a=255), description="The color of the image")

    @model_validator(mode="after")
    def _pixels_within_limit(self, info: ValidationInfo) -> BlankImageInvocation:
        _check_pixels(self.width, self.height, info.context)
        return self

    def invoke(self, context: InvocationContext) -> ImageOutput:
        from PIL import Image  # here, not at import: Pillow kept off start-up
        _check_pixels(self.width, self.height, context.config)
        color = self.color.as_tuple() if self.mode == "RGBA" else self.color.as_tuple()[:3]
        return _save(self, context, Image.new(mode=self.mode, size=(self.width, self.height), color=color))


@invocation("img_crop", title="Crop Image", tags=["image", "crop"], category="image")
class ImageCropInvocation(BaseInvocation):
    """Crop an image to a box; the box may reach outside the image (that part is transparent)."""

    image: ImageField = InputField(description="The image to crop")
    x: int = InputField(default=0, description="The left x coordinate of the crop rectangle")
    y: int = InputField(default=0, description="The top y coordinate of the crop rectangle")
    width: int = InputField(default=512, gt=0, le=16384, description="The width of the crop rectangle")
    height: int = InputField(default=512, gt=0, le=16384, description="The height of the crop rectangle")

    @model_validator(mode="after")
    def _pixels_within_limit(self, info: ValidationInfo) -> ImageCropInvocation:
        _check_pixels(self.width, self.height, info.context)
        return self

    def invoke(self, context: InvocationContext) -> ImageOutput:
        from PIL import Image  # here, not at import: Pillow kept off start-up
        _check_pixels(self.width, self.height, context.config)
        image = context.images.get_pil(self.image.image_name)
        cropped = Image.new(mode="RGBA", size=(self.width, self.height), color=(0, 0, 0, 0))
        cropped.paste(image, (-self.x, -self.y))
        return _save(self, context, cropped)


@invocation("img_paste", title="Paste Image", tags=["image", "paste"], category="image", version="1.0.1")
class ImagePasteInvocation(BaseInvocation):
    """Paste an image into another, optionally through a mask.

    As in InvokeAI, the mask is inverted before use: where the mask is black the pasted image shows,
    where it is white the base image stays.
    """

    base_image: ImageField = InputField(description="The base image")
    image: ImageField = InputField(description="The image to paste")
    mask: ImageField | None = InputField(default=None, description="The mask to use when pasting")
    x: int = InputField(default=0, description="The left x coordinate at which to paste the image")
    y: int = InputField(default=0, description="The top y coordinate at which to paste the image")
    crop: bool = InputField(default=False, description="Crop to base image dimensions")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        from PIL import Image, ImageOps  # here, not at import: Pillow kept off start-up
        base = context.images.get_pil(self.base_image.image_name)
        image = context.images.get_pil(self.image.image_name)
        mask = None
        if self.mask is not None:
            mask = ImageOps.invert(context.images.get_pil(self.mask.image_name, "L"))
        min_x, min_y = min(0, self.x), min(0, self.y)
        max_x = max(base.width, image.width + self.x)
        max_y = max(base.height, image.height + self.y)
        _check_pixels(max_x - min_x, max_y - min_y, context.config)  # far offsets make a huge canvas
        pasted = Image.new(mode="RGBA", size=(max_x - min_x, max_y - min_y), color=(0, 0, 0, 0))
        pasted.paste(base, (abs(min_x), abs(min_y)))
        pasted.paste(image, (max(0, self.x), max(0, self.y)), mask=mask)
        if self.crop:
            pasted = pasted.crop((abs(min_x), abs(min_y), abs(min_x) + base.width, abs(min_y) + base.height))
        return _save(self, context, pasted)


@invocation("img_resize", title="Resize Image", tags=["image", "resize"], category="image")
class ImageResizeInvocation(BaseInvocation):
    """Resize an image to a width and height."""

    image: ImageField = InputField(description="The image to resize")
    width: int = InputField(default=512, gt=0, le=16384, description="The width to resize to (px)")
    height: int = InputField(default=512, gt=0, le=16384, description="The height to resize to (px)")
    resample_mode: PIL_RESAMPLING_MODES = InputField(default="bicubic", description="The resampling mode")

    @model_validator(mode="after")
    def _pixels_within_limit(self, info: ValidationInfo) -> ImageResizeInvocation:
        _check_pixels(self.width, self.height, info.context)
        return self

    def invoke(self, context: InvocationContext) -> ImageOutput:
        _check_pixels(self.width, self.height, context.config)
        image = context.images.get_pil(self.image.image_name)
        resized = image.resize((self.width, self.height), resample=_resampling(self.resample_mode))
        return _save(self, context, resized)


@invocation("img_scale", title="Scale Image", tags=["image", "scale"], category="image")
class ImageScaleInvocation(BaseInvocation):
    """Scale an image by a factor."""

    image: ImageField = InputField(description="The image to scale")
    scale_factor: float = InputField(default=2.0, gt=0, le=16, description="The factor by which to scale the image")
    resample_mode: PIL_RESAMPLING_MODES = InputField(default="bicubic", description="The resampling mode")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        image = context.images.get_pil(self.image.image_name)
        size = (max(1, int(image.width * self.scale_factor)), max(1, int(image.height * self.scale_factor)))
        _check_pixels(*size, context.config)
        return _save(self, context, image.resize(size, resample=_resampling(self.resample_mode)))


@invocation("img_blur", title="Blur Image", tags=["image", "blur"], category="image")
class ImageBlurInvocation(BaseInvocation):
    """Blur an image."""

    image: ImageField = InputField(description="The image to blur")
    radius: float = InputField(default=8.0, ge=0, description="The blur radius")
    blur_type: Literal["gaussian", "box"] = InputField(default="gaussian", description="The type of blur")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        from PIL import ImageFilter  # here, not at import: Pillow kept off start-up
        image = context.images.get_pil(self.image.image_name)
        gaussian = self.blur_type == "gaussian"
        blur = ImageFilter.GaussianBlur(self.radius) if gaussian else ImageFilter.BoxBlur(self.radius)
        return _save(self, context, image.filter(blur))


@invocation("img_invert", title="Invert Image", tags=["image", "invert"], category="image")
class ImageInvertInvocation(BaseInvocation):
    """Invert an image's colors; an alpha channel is kept as it is."""

    image: ImageField = InputField(description="The image to invert")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        from PIL import Image, ImageOps  # here, not at import: Pillow kept off start-up
        image = context.images.get_pil(self.image.image_name)
        if image.mode in ("RGBA", "LA"):
            *color, alpha = image.split()
            inverted = Image.merge(image.mode, [ImageOps.invert(band) for band in color] + [alpha])
        elif image.mode in ("RGB", "L"):
            inverted = ImageOps.invert(image)
        else:
            inverted = ImageOps.invert(image.convert("RGB"))
        return _save(self, context, inverted)


@invocation("img_conv", title="Convert Image Mode", tags=["image", "convert"], category="image")
class ImageConvertInvocation(BaseInvocation):
    """Convert an image to another mode."""

    image: ImageField = InputField(description="The image to convert")
    mode: IMAGE_MODES = InputField(default="L", description="The mode to convert to")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        return _save(self, context, context.images.get_pil(self.image.image_name, self.mode))


@invocation("img_chan", title="Extract Image Channel", tags=["image", "channel"], category="image")
class ImageChannelInvocation(BaseInvocation):
    """Extract one channel of an image as a grayscale image (an image without alpha has an opaque one)."""

    image: ImageField = InputField(description="The image to get the channel from")
    channel: IMAGE_CHANNELS = InputField(default="A", description="The channel to get")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        return _save(self, context, context.images.get_pil(self.image.image_name, "RGBA").getchannel(self.channel))


@invocation(
    "image_collection", title="Image Collection Primitive", tags=["primitives", "image", "collection"],
    category="primitives",
)
class ImageCollectionInvocation(BaseInvocation):
    """A collection of images."""

    collection: list[ImageField] = InputField(description="The collection of image values")

    def invoke(self, context: InvocationContext) -> ImageCollectionOutput:
        return ImageCollectionOutput(collection=list(self.collection))


@invocation("save_image", title="Save Image", tags=["primitives", "image"], category="primitives", use_cache=False)
class SaveImageInvocation(BaseInvocation):
    """Save a copy of an image as a gallery image, with optional metadata."""

    image: ImageField = InputField(description="The image to save")
    metadata: dict[str, Any] | None = InputField(
        default=None, description="Generation metadata to embed in the image", ui_hidden=True
    )

    def invoke(self, context: InvocationContext) -> ImageOutput:
        image = context.images.get_pil(self.image.image_name)
        return _save(self, context, image, metadata=self.metadata)


NODES: tuple[type[BaseInvocation], ...] = (
    BlankImageInvocation,
    ImageBlurInvocation,
    ImageChannelInvocation,
    ImageCollectionInvocation,
    ImageConvertInvocation,
    ImageCropInvocation,
    ImageInvertInvocation,
    ImageInvocation,
    ImagePasteInvocation,
    ImageResizeInvocation,
    ImageScaleInvocation,
    SaveImageInvocation,
)
"""Every node of the plugin."""
