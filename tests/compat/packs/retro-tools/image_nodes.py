import json
from typing import Literal

from invokeai.invocation_api import (
    BaseInvocation,
    Classification,
    ColorField,
    ImageCategory,
    ImageField,
    ImageOutput,
    Input,
    InputField,
    InvocationContext,
    MetadataField,
    MetadataOutput,
    UIComponent,
    WithBoard,
    WithMetadata,
    invocation,
)
from PIL import Image, ImageOps


@invocation("retro_posterize", title="Retro Posterize", tags=["image", "retro"], category="image", version="1.2.0")
class PosterizeInvocation(BaseInvocation, WithMetadata, WithBoard):
    """Reduce each channel to a few bits."""

    image: ImageField = InputField(description="The image to posterize")
    bits: int = InputField(default=2, ge=1, le=8, description="Bits per channel", ui_order=1)
    mode: Literal["rgb", "gray"] = InputField(
        default="rgb", description="Color or gray", ui_choice_labels={"rgb": "Color", "gray": "Grayscale"}
    )
    note: str = InputField(default=None, description="A note", ui_component=UIComponent.Textarea)

    def invoke(self, context: InvocationContext) -> ImageOutput:
        image = context.images.get_pil(self.image.image_name, "RGB")
        if self.mode == "gray":
            image = ImageOps.grayscale(image).convert("RGB")
        image_dto = context.images.save(image=ImageOps.posterize(image, self.bits),
                                        image_category=ImageCategory.GENERAL)
        return ImageOutput.build(image_dto)


@invocation("retro_solid", title="Retro Solid Color", category="image", classification=Classification.Beta)
class SolidColorInvocation(BaseInvocation):
    """An image of one color (no version given: InvokeAI's default, 1.0.0)."""

    color: ColorField = InputField(default=ColorField(r=200, g=40, b=10, a=255), description="The color")
    width: int = InputField(default=24, gt=0, le=512)
    height: int = InputField(default=16, gt=0, le=512)

    def invoke(self, context: InvocationContext) -> ImageOutput:
        image = Image.new("RGBA", (self.width, self.height), self.color.tuple())
        return ImageOutput.build(context.images.save(image=image))


@invocation("retro_metadata", title="Retro Metadata", category="metadata", version="1.0.0")
class MetadataMakerInvocation(BaseInvocation):
    """Metadata for the images of a later node."""

    prompt: str = InputField(default="", input=Input.Direct)

    def invoke(self, context: InvocationContext) -> MetadataOutput:
        return MetadataOutput(metadata=MetadataField({"positive_prompt": self.prompt, "pack": "retro-tools"}))


def describe(context: InvocationContext, image_name: str) -> str:
    dto = context.images.get_dto(image_name)
    metadata = context.images.get_metadata(image_name)
    path = context.images.get_path(image_name)
    return json.dumps({"size": [dto.width, dto.height], "metadata": metadata.root if metadata else None,
                       "file": path.name, "exists": path.is_file(), "board_id": dto.board_id})
