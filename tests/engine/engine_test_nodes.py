"""Nodes the engine tests need: failures, constraints, progress/cancel, call counting. Registered explicitly."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    Input,
    InputField,
    InvocationContext,
    OutputField,
    hookimpl,
    invocation,
    invocation_output,
)
from invoke_sdk.cancellation import InvocationCanceledError
from invoke_sdk.hookspecs import RegisterInvocation
from pydantic import Field, ValidationInfo, field_validator, model_validator

CALLS: list[str] = []
STARTED = threading.Event()


@invocation_output("t_int_output")
class TIntOutput(BaseInvocationOutput):
    value: int = OutputField()


@invocation_output("t_str_output")
class TStrOutput(BaseInvocationOutput):
    text: str = OutputField()


@invocation_output("t_numbers_output")
class TNumbersOutput(BaseInvocationOutput):
    numbers: list[int] = OutputField()


@invocation("t_numbers")
class NumbersInvocation(BaseInvocation):
    """A list under another output name than 'collection'."""

    count: int = InputField(default=3)

    def invoke(self, context: InvocationContext) -> TNumbersOutput:
        return TNumbersOutput(numbers=list(range(10, 10 + self.count)))


@invocation("t_type_of")
class TypeOfInvocation(BaseInvocation):
    """Names the type of what it is given: an input that takes anything."""

    value: Any = InputField(default=None)

    def invoke(self, context: InvocationContext) -> TStrOutput:
        return TStrOutput(text=type(self.value).__name__)


@invocation_output("t_item_output")
class TItemOutput(BaseInvocationOutput):
    item: int = OutputField()


class _ItemInvocation(BaseInvocation):
    """An input and an output named 'item', as collect's input and iterate's output are: the rules for those
    belong to collect and iterate only, whatever the type id of another node sorts before or after."""

    item: int = InputField(default=0)

    def invoke(self, context: InvocationContext) -> TItemOutput:
        return TItemOutput(item=self.item)


@invocation("t_item")
class TItemInvocation(_ItemInvocation):
    pass


@invocation("a_item")
class AItemInvocation(_ItemInvocation):
    pass


@invocation("t_texts")
class TextsInvocation(BaseInvocation):
    texts: list[str] = InputField(default_factory=list)

    def invoke(self, context: InvocationContext) -> TStrOutput:
        return TStrOutput(text="".join(self.texts))


@invocation("t_boom")
class BoomInvocation(BaseInvocation):
    a: int = InputField(default=0)

    def invoke(self, context: InvocationContext) -> TIntOutput:
        raise RuntimeError(f"boom at {self.a}")


@invocation("t_size")
class SizeInvocation(BaseInvocation):
    width: int = InputField(default=8, gt=0)
    height: int = InputField(default=8, gt=0)

    def invoke(self, context: InvocationContext) -> TIntOutput:
        return TIntOutput(value=self.width * self.height)


@invocation("t_count")
class CountInvocation(BaseInvocation):
    a: int = InputField(default=0)

    def invoke(self, context: InvocationContext) -> TIntOutput:
        CALLS.append(self.id)
        return TIntOutput(value=self.a)


@invocation("t_wait_cancel")
class WaitCancelInvocation(BaseInvocation):
    a: int = InputField(default=0)

    def invoke(self, context: InvocationContext) -> TIntOutput:
        context.util.signal_progress("waiting", 0.5)
        STARTED.set()
        while not context.util.is_canceled():
            threading.Event().wait(0.005)
        return TIntOutput(value=-1)


@invocation("t_raise_canceled")
class RaiseCanceledInvocation(BaseInvocation):
    """Stops the way the denoise node does when it sees a cancel: by raising InvocationCanceledError."""

    a: int = InputField(default=0)

    def invoke(self, context: InvocationContext) -> TIntOutput:
        CALLS.append(self.id)
        raise InvocationCanceledError(f"stopped at step {self.a}")


@invocation_output("t_list_output")
class TListOutput(BaseInvocationOutput):
    items: list[int] = OutputField()


@invocation("t_list")
class ListInvocation(BaseInvocation):
    """Returns ``count`` integers, whatever the host's limits say (as a third-party node may)."""

    count: int = InputField(default=3)

    def invoke(self, context: InvocationContext) -> TListOutput:
        CALLS.append(self.id)
        return TListOutput(items=list(range(self.count)))


@invocation("t_wrong_output")
class WrongOutputInvocation(BaseInvocation):
    def invoke(self, context: InvocationContext) -> TIntOutput:
        return TStrOutput(text="not an int output")  # type: ignore[return-value]


@invocation("t_needs_text")
class NeedsTextInvocation(BaseInvocation):
    text: str = InputField(description="required")
    items: list[int] = InputField(default_factory=list)
    fixed: int = InputField(default=1, input=Input.Direct)

    def invoke(self, context: InvocationContext) -> TStrOutput:
        return TStrOutput(text=self.text)


@invocation("t_strict_validator")
class StrictValidatorInvocation(BaseInvocation):
    """A node whose own validator raises something other than ValueError (pydantic passes it through)."""

    value: int = InputField(default=0)

    @field_validator("value")
    @classmethod
    def _not_unlucky(cls, value: int) -> int:
        if value == 13:
            raise RuntimeError(f"{value} is unlucky")
        return value

    def invoke(self, context: InvocationContext) -> TIntOutput:
        return TIntOutput(value=self.value)


@invocation("t_positive_list")
class PositiveListInvocation(BaseInvocation):
    """Every item must be positive: a bad item fails at ('values', index)."""

    values: list[Annotated[int, Field(gt=0)]] = InputField(default_factory=list)

    def invoke(self, context: InvocationContext) -> TIntOutput:
        return TIntOutput(value=sum(self.values))


@invocation("t_pair")
class PairInvocation(BaseInvocation):
    """Checks across fields: 'b' must differ from 'a' (fails at 'b'), 'c' too (a model check, fails at ())."""

    a: int = InputField(default=0)
    b: int = InputField(default=1)
    c: int = InputField(default=2)

    @field_validator("b")
    @classmethod
    def _b_differs(cls, b: int, info: ValidationInfo) -> int:
        if b == info.data.get("a"):
            raise ValueError("b must differ from a")
        return b

    @model_validator(mode="after")
    def _c_differs(self) -> PairInvocation:
        if self.c == self.a:
            raise ValueError("c must differ from a")
        return self

    def invoke(self, context: InvocationContext) -> TIntOutput:
        return TIntOutput(value=self.a + self.b + self.c)


@invocation_output("t_ints_output")
class TIntsOutput(BaseInvocationOutput):
    collection: list[int] = OutputField()


@invocation("t_upto")
class UpToInvocation(BaseInvocation):
    """``list(range(start, stop))``, empty when ``stop <= start`` (core ``range`` refuses that, as InvokeAI's does)."""

    start: int = InputField(default=0)
    stop: int = InputField(default=0)

    def invoke(self, context: InvocationContext) -> TIntsOutput:
        return TIntsOutput(collection=list(range(self.start, self.stop)))


@invocation("t_concat")
class ConcatInvocation(BaseInvocation):
    """Two lists one after the other: a node, not a collect, with two collection inputs."""

    left: list[int] = InputField(default=[])
    right: list[int] = InputField(default=[])

    def invoke(self, context: InvocationContext) -> TIntsOutput:
        return TIntsOutput(collection=[*self.left, *self.right])


@invocation("t_image_metadata")
class ImageMetadataInvocation(BaseInvocation):
    """Reads an image's metadata: a node that uses ``context.images``."""

    name: str = InputField(default="x.png")

    def invoke(self, context: InvocationContext) -> TStrOutput:
        return TStrOutput(text=str(context.images.get_metadata(self.name)))


@hookimpl
def register_invocations(register: RegisterInvocation) -> None:
    for cls in (BoomInvocation, SizeInvocation, CountInvocation, WaitCancelInvocation, WrongOutputInvocation,
                NeedsTextInvocation, RaiseCanceledInvocation, StrictValidatorInvocation, PositiveListInvocation,
                PairInvocation, NumbersInvocation, TypeOfInvocation, TItemInvocation, AItemInvocation,
                TextsInvocation, ListInvocation, UpToInvocation, ConcatInvocation, ImageMetadataInvocation):
        register(cls)
