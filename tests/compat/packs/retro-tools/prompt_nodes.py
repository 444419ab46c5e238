from invokeai.app.invocations.baseinvocation import (
    BaseInvocation,
    InputField,
    InvocationContext,
    UIComponent,
    invocation,
)
from invokeai.app.invocations.fields import ImageField
from invokeai.app.invocations.primitives import IntegerOutput, StringOutput

from .image_nodes import describe


@invocation("retro_prompt", title="Retro Prompt Style", tags=["prompt"], category="prompt", version="1.0.1")
class PromptStyleInvocation(BaseInvocation):
    """Add a style to a prompt; with an image, describe the image instead."""

    prompt: str = InputField(default="", description="The prompt", ui_component=UIComponent.Textarea)
    style: str = InputField(default="pixel art", description="The style")
    image: ImageField = InputField(default=None, description="An image to describe")

    def invoke(self, context: InvocationContext) -> StringOutput:
        if self.image is not None:
            return StringOutput(value=describe(context, self.image.image_name))
        context.logger.info("styling %r", self.prompt)
        return StringOutput(value=f"{self.prompt}, {self.style}" if self.prompt else self.style)


@invocation("retro_wrong_output", title="Returns the wrong output", version="1.0.0")
class WrongOutputInvocation(BaseInvocation):
    """A pack bug: declared to return a string, returns an integer."""

    def invoke(self, context: InvocationContext) -> StringOutput:
        return IntegerOutput(value=3)  # type: ignore[return-value]
