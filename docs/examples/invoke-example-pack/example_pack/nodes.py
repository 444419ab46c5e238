"""The pack's nodes. Only invoke_sdk is imported: a pack never depends on the host."""

from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    InputField,
    InvocationContext,
    OutputField,
    invocation,
    invocation_output,
)


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
