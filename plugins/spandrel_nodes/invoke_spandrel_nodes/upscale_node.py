"""InvokeAI's ``spandrel_image_to_image`` node: any spandrel model over an image, tile by tile."""

from __future__ import annotations

from typing import Any

from invoke_sdk import BaseInvocation, ImageField, InputField, InvocationContext, ModelIdentifierField, invocation
from invoke_sdk.cancellation import InvocationCanceledError
from invoke_sdk.limits import check_limit
from invoke_sdk.outputs import ImageOutput

from invoke_spandrel_nodes.tiles import tiles

__all__ = ["MIN_OVERLAP", "SpandrelImageToImageInvocation", "run_tiled"]

MIN_OVERLAP = 20
"""Pixels tiles overlap at least; half of each overlap is dropped on either side, hiding the models' edge effects."""


def run_tiled(image: Any, model: Any, tile_size: int, *, is_canceled: Any, progress: Any) -> Any:
    """The model's output for an RGB PIL image, computed in ``tile_size`` tiles (0: the whole image at once).

    Each tile's output goes into the result except for half of its overlap with the tiles above and to its
    left, which the earlier tiles keep: seams fall in the middle of overlaps, away from the tiles' edges.
    """
    import numpy as np
    import torch
    from PIL import Image

    boxes = tiles(image.width, image.height, tile_size or max(image.size), MIN_OVERLAP if tile_size else 0)
    scale = model.scale
    out = torch.zeros((image.height * scale, image.width * scale, 3), dtype=torch.uint8)
    progress(0, len(boxes))
    previous_right: dict[int, int] = {}
    previous_bottom: dict[int, int] = {}
    for index, box in enumerate(boxes):
        if is_canceled():
            raise InvocationCanceledError(f"canceled at tile {index + 1} of {len(boxes)}")
        crop = image.crop((box.left, box.top, box.right, box.bottom))
        pixels = torch.from_numpy(np.asarray(crop, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        result = model.run(pixels.to(model.device, model.dtype))
        result = (result[0].permute(1, 2, 0).float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        # Keep half of the overlap with the tile to the left (same row) and the tile above (same column).
        left_overlap = max(0, previous_right.get(box.top, box.left) - box.left) // 2
        top_overlap = max(0, previous_bottom.get(box.left, box.top) - box.top) // 2
        out[(box.top + top_overlap) * scale: box.bottom * scale, (box.left + left_overlap) * scale: box.right * scale] \
            = result[top_overlap * scale:, left_overlap * scale:]
        previous_right[box.top] = box.right
        previous_bottom[box.left] = box.bottom
        progress(index + 1, len(boxes))
    return Image.fromarray(out.numpy(), mode="RGB")


@invocation("spandrel_image_to_image", title="Image-to-Image", tags=["upscale"], category="upscale",
            version="1.3.0")
class SpandrelImageToImageInvocation(BaseInvocation):
    """Run any spandrel image-to-image model (https://github.com/chaiNNer-org/spandrel)."""

    image: ImageField = InputField(description="The input image")
    image_to_image_model: ModelIdentifierField = InputField(title="Image-to-Image Model",
                                                            description="Image-to-Image model")
    tile_size: int = InputField(default=512, ge=0,
                                description="The tile size for tiled image-to-image. Set to 0 to disable tiling.")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        config = context.models.get_config(self.image_to_image_model)
        kind = str(getattr(config.type, "value", config.type))
        if kind != "spandrel_image_to_image":
            raise ValueError(f"model {config.key} is a {kind} model, not an image-to-image (spandrel) model")
        image = context.images.get_pil(self.image.image_name, "RGB")

        def progress(step: int, total: int) -> None:
            context.util.signal_progress(f"Processing tile {step}/{total}", step / total)

        with context.models.load(self.image_to_image_model) as model:
            width, height = image.width * model.scale, image.height * model.scale
            check_limit(width * height, "max_image_pixels", context.config,
                        f"the pixel count of the {width}x{height} result")
            result = run_tiled(image, model, self.tile_size, is_canceled=context.util.is_canceled,
                               progress=progress)
        saved = context.images.save(result, is_intermediate=self.is_intermediate)
        return ImageOutput.build(saved, result)
