"""The pack's nodes. Only invoke_sdk (and Pillow, for images) is imported: a pack never depends on the host."""

from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    ImageField,
    InputField,
    InvocationContext,
    ModelIdentifierField,
    OutputField,
    invocation,
    invocation_output,
)
from invoke_sdk.outputs import ImageOutput
from PIL import ImageOps


@invocation_output("example_text_output")
class TextOutput(BaseInvocationOutput):
    """A piece of text."""

    text: str = OutputField(description="The text")


@invocation_output("example_count_output")
class CountOutput(BaseInvocationOutput):
    """A count."""

    count: int = OutputField(description="How many")


@invocation("example_repeat", title="Repeat Text", tags=["text"], category="example", version="1.0.0")
class RepeatInvocation(BaseInvocation):
    """Repeats a text a number of times, separated by a space."""

    text: str = InputField(description="The text to repeat")
    times: int = InputField(default=2, ge=1, le=100, description="How many times")

    def invoke(self, context: InvocationContext) -> TextOutput:
        context.util.signal_progress(f"repeating {self.times} times")
        return TextOutput(text=" ".join([self.text] * self.times))


@invocation("example_word_count", title="Count Words", tags=["text"], category="example", version="1.0.0")
class WordCountInvocation(BaseInvocation):
    """Counts the words of a text."""

    text: str = InputField(default="", description="The text")

    def invoke(self, context: InvocationContext) -> CountOutput:
        return CountOutput(count=len(self.text.split()))


@invocation("example_invert", title="Invert Image", tags=["image"], category="example", version="1.0.0")
class InvertInvocation(BaseInvocation):
    """Inverts the colours of an image."""

    image: ImageField = InputField(description="The image to invert")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        image = context.images.get_pil(self.image.image_name, "RGB")
        inverted = ImageOps.invert(image)
        saved = context.images.save(inverted)  # an ImageField: the stored image's name
        return ImageOutput.build(saved, inverted)


@invocation("example_lora_size", title="LoRA Size", tags=["model"], category="example", version="1.0.0")
class LoRASizeInvocation(BaseInvocation):
    """Counts the weights of an installed LoRA."""

    lora: ModelIdentifierField = InputField(description="The LoRA to measure")

    def invoke(self, context: InvocationContext) -> CountOutput:
        config = context.models.get_config(self.lora)
        if config.type != "lora":
            raise ValueError(f"model {config.name!r} is a {config.type} model, not a LoRA")
        with context.models.load(self.lora) as weights:  # the LoRA's tensors by name, held while the block runs
            return CountOutput(count=sum(tensor.numel() for tensor in weights.values()))


@invocation("example_greet", title="Greet", tags=["text"], category="example", version="2.0.0")
class GreetInvocation(BaseInvocation):
    """Greets someone. Version 2.0.0 renamed the input ``name`` to ``who``: ``example_pack.migrations`` upgrades
    graphs saved with 1.0.0, so they keep running."""

    who: str = InputField(default="world", description="Who to greet")
    greeting: str = InputField(default="Hello", description="The word to greet with")

    def invoke(self, context: InvocationContext) -> TextOutput:
        return TextOutput(text=f"{self.greeting}, {self.who}!")
