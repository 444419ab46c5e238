"""ControlNet preprocessors that need no model weights, with InvokeAI's type ids and field names.

``canny_edge_detection``, ``content_shuffle`` and ``color_map`` are InvokeAI's current nodes;
``canny_image_processor`` and ``tile_image_processor`` its older ones, which saved workflows still use.
Every result image is checked against ``max_image_pixels`` before it is made.
"""

from __future__ import annotations

from typing import Any

from invoke_sdk import BaseInvocation, ImageField, InputField, InvocationContext, invocation
from invoke_sdk.limits import check_limit
from invoke_sdk.outputs import ImageOutput

__all__ = [
    "PREPROCESSOR_NODES",
    "CannyEdgeDetectionInvocation",
    "CannyImageProcessorInvocation",
    "ColorMapInvocation",
    "ContentShuffleInvocation",
    "TileImageProcessorInvocation",
]


def _save(node: BaseInvocation, context: InvocationContext, image: Any) -> ImageOutput:
    field = context.images.save(image, is_intermediate=node.is_intermediate)
    return ImageOutput.build(field, image)


def _check_pixels(width: int, height: int, context: InvocationContext) -> None:
    check_limit(width * height, "max_image_pixels", context.config, f"the pixel count of a {width}x{height} image")


def _resize_to_resolution(image: Any, resolution: int, context: InvocationContext) -> Any:
    """The shorter side at ``resolution``, both sides rounded to multiples of 64 (controlnet_aux's rule)."""
    from PIL import Image  # here, not at import: Pillow kept off start-up
    scale = resolution / min(image.size)
    width = max(64, round(image.width * scale / 64) * 64)
    height = max(64, round(image.height * scale / 64) * 64)
    _check_pixels(width, height, context)
    resample = Image.Resampling.LANCZOS if scale > 1 else Image.Resampling.BOX
    return image.resize((width, height), resample)


@invocation("canny_edge_detection", title="Canny Edge Detection", tags=["controlnet", "canny"],
            category="controlnet_preprocessors", version="1.0.0")
class CannyEdgeDetectionInvocation(BaseInvocation):
    """Generates an edge map with the Canny algorithm."""

    image: ImageField = InputField(description="The image to process")
    low_threshold: int = InputField(default=100, ge=0, le=255,
                                    description="The low threshold of the Canny pixel gradient (0-255)")
    high_threshold: int = InputField(default=200, ge=0, le=255,
                                     description="The high threshold of the Canny pixel gradient (0-255)")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        # numpy and the edge maps are imported where they run: numpy costs every start-up about 0.3 s otherwise.
        import numpy as np
        from PIL import Image  # here, not at import: Pillow kept off start-up

        from invoke_image_nodes.edge_maps import canny

        image = context.images.get_pil(self.image.image_name, "RGB")
        edges = canny(np.asarray(image), self.low_threshold, self.high_threshold)
        return _save(self, context, Image.fromarray(edges, mode="L"))


@invocation("canny_image_processor", title="Canny Processor", tags=["controlnet", "canny"],
            category="controlnet", version="1.3.3")
class CannyImageProcessorInvocation(BaseInvocation):
    """Canny edge detection for ControlNet, at a detection resolution, resized to an output resolution."""

    image: ImageField = InputField(description="The image to process")
    detect_resolution: int = InputField(default=512, ge=1, description="Pixel resolution for detection")
    image_resolution: int = InputField(default=512, ge=1, description="Pixel resolution for output image")
    low_threshold: int = InputField(default=100, ge=0, le=255, description="The low threshold of the Canny pixel "
                                    "gradient (0-255)")
    high_threshold: int = InputField(default=200, ge=0, le=255, description="The high threshold of the Canny pixel "
                                     "gradient (0-255)")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        import numpy as np  # off start-up, as in CannyEdgeDetectionInvocation
        from PIL import Image  # here, not at import: Pillow kept off start-up

        from invoke_image_nodes.edge_maps import canny

        image = context.images.get_pil(self.image.image_name, "RGB")
        detect = _resize_to_resolution(image, self.detect_resolution, context)
        edges = Image.fromarray(canny(np.asarray(detect), self.low_threshold, self.high_threshold), mode="L")
        return _save(self, context, _resize_to_resolution(edges.convert("RGB"), self.image_resolution, context))


@invocation("content_shuffle", title="Content Shuffle", tags=["controlnet", "normal"],
            category="controlnet_preprocessors", version="1.0.0")
class ContentShuffleInvocation(BaseInvocation):
    """Shuffles the image, similar to a 'liquify' filter."""

    image: ImageField = InputField(description="The image to process")
    scale_factor: int = InputField(default=256, ge=0, description="The scale factor used for the shuffle")
    seed: int = InputField(default=0, ge=0, description="Seed of the shuffle's random flow (the same seed, the "
                           "same shuffle)")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        from PIL import Image  # here, not at import: Pillow kept off start-up
        image = context.images.get_pil(self.image.image_name, "RGB")
        if self.scale_factor == 0:
            return _save(self, context, image)  # no flow to follow: every pixel stays
        import numpy as np  # off start-up, as in CannyEdgeDetectionInvocation

        from invoke_image_nodes.edge_maps import content_shuffle

        shuffled = content_shuffle(np.asarray(image), self.scale_factor, self.seed)
        return _save(self, context, Image.fromarray(shuffled, mode="RGB"))


@invocation("color_map", title="Color Map", tags=["controlnet"], category="controlnet_preprocessors",
            version="1.0.0")
class ColorMapInvocation(BaseInvocation):
    """Generates a color map from the provided image."""

    image: ImageField = InputField(description="The image to process")
    tile_size: int = InputField(default=64, ge=1, description="Tile size")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        from PIL import Image  # here, not at import: Pillow kept off start-up
        image = context.images.get_pil(self.image.image_name, "RGB")
        tile_w, tile_h = min(self.tile_size, image.width), min(self.tile_size, image.height)
        small = image.resize((image.width // tile_w, image.height // tile_h), Image.Resampling.BICUBIC)
        return _save(self, context, small.resize(image.size, Image.Resampling.NEAREST))


@invocation("tile_image_processor", title="Tile Resample Processor", tags=["controlnet", "tile"],
            category="controlnet", version="1.3.3")
class TileImageProcessorInvocation(BaseInvocation):
    """Tile resampler for the tile ControlNet: the image downsampled by ``down_sampling_rate``."""

    image: ImageField = InputField(description="The image to process")
    down_sampling_rate: float = InputField(default=1.0, ge=1.0, description="Down sampling rate")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        from PIL import Image  # here, not at import: Pillow kept off start-up
        image = context.images.get_pil(self.image.image_name, "RGB")
        if self.down_sampling_rate > 1:
            size = (max(1, int(image.width / self.down_sampling_rate)),
                    max(1, int(image.height / self.down_sampling_rate)))
            image = image.resize(size, Image.Resampling.BOX)
        return _save(self, context, image)


PREPROCESSOR_NODES: tuple[type[BaseInvocation], ...] = (
    CannyEdgeDetectionInvocation,
    CannyImageProcessorInvocation,
    ContentShuffleInvocation,
    ColorMapInvocation,
    TileImageProcessorInvocation,
)
"""The preprocessor nodes, in the order they are registered."""
