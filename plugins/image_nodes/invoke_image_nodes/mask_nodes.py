"""Mask image nodes for inpainting graphs (InvokeAI's ids and fields): a mask from an image's alpha, two masks
combined. Masks are ``L`` images; white keeps, black is repainted, as ``create_denoise_mask`` reads them."""

from __future__ import annotations

from invoke_sdk import BaseInvocation, ImageField, InputField, InvocationContext, invocation
from invoke_sdk.outputs import ImageOutput

__all__ = ["MASK_NODES", "MaskCombineInvocation", "MaskFromAlphaInvocation"]


@invocation("tomask", title="Mask from Alpha", tags=["image", "mask"], category="mask", version="1.2.2")
class MaskFromAlphaInvocation(BaseInvocation):
    """Extracts the alpha channel of an image as a mask."""

    image: ImageField = InputField(description="The image to create the mask from")
    invert: bool = InputField(default=False, description="Whether or not to invert the mask")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        from PIL import ImageOps  # here, not at import: Pillow kept off start-up
        image = context.images.get_pil(self.image.image_name, "RGBA")
        mask = image.getchannel("A")
        if self.invert:
            mask = ImageOps.invert(mask)
        field = context.images.save(mask, category="mask", is_intermediate=self.is_intermediate)
        return ImageOutput.build(field, mask)


@invocation("mask_combine", title="Combine Masks", tags=["image", "mask", "multiply"], category="mask",
            version="1.2.2")
class MaskCombineInvocation(BaseInvocation):
    """Combine two masks together by multiplying them using `PIL.ImageChops.multiply()`."""

    mask1: ImageField = InputField(description="The first mask to combine")
    mask2: ImageField = InputField(description="The second image to combine")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        from PIL import ImageChops  # here, not at import: Pillow kept off start-up
        first = context.images.get_pil(self.mask1.image_name, "L")
        second = context.images.get_pil(self.mask2.image_name, "L")
        if first.size != second.size:
            raise ValueError(f"the masks differ in size ({first.width}x{first.height} and "
                             f"{second.width}x{second.height}): resize one to the other first")
        combined = ImageChops.multiply(first, second)
        field = context.images.save(combined, category="mask", is_intermediate=self.is_intermediate)
        return ImageOutput.build(field, combined)


MASK_NODES: tuple[type[BaseInvocation], ...] = (MaskCombineInvocation, MaskFromAlphaInvocation)
"""The mask nodes, registered with the other image nodes."""
