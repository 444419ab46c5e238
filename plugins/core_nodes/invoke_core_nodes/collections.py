"""Ranges, and the two engine nodes: ``iterate`` (one branch per item) and ``collect`` (items back into a list).

The engine gives ``iterate`` and ``collect`` their meaning (it expands and gathers them by type id);
the classes here define their fields and outputs like any other node.

The ranges refuse a length past the host's ``max_collection_size`` before they make a list: when the
graph is validated (their validators read the limits from the validation context) and again when they
run (from ``context.config``), since a size may arrive over an edge. See ``invoke_sdk.limits``.
"""

from __future__ import annotations

from typing import Any

from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    Input,
    InputField,
    InvocationContext,
    OutputField,
    invocation,
    invocation_output,
)
from invoke_sdk.limits import check_limit
from pydantic import ValidationInfo, field_validator, model_validator

from invoke_core_nodes.primitives import IntegerCollectionOutput

__all__ = ["NODES", "CollectInvocationOutput", "IterateInvocationOutput"]


@invocation("range", title="Integer Range", tags=["collection", "integer", "range"], category="collections")
class RangeInvocation(BaseInvocation):
    """Creates a range of numbers from start to stop with step."""

    start: int = InputField(default=0, description="The start of the range")
    stop: int = InputField(default=10, description="The stop of the range")
    step: int = InputField(default=1, description="The step of the range")

    @field_validator("stop")
    @classmethod
    def _stop_after_start(cls, v: int, info: ValidationInfo) -> int:
        if "start" in info.data and v <= info.data["start"]:
            raise ValueError("stop must be greater than start")
        return v

    @model_validator(mode="after")
    def _length_within_limit(self, info: ValidationInfo) -> RangeInvocation:
        check_limit(self._length(), "max_collection_size", info.context, "the length of the range")
        return self

    def _length(self) -> int:
        return len(range(self.start, self.stop, self.step)) if self.step else 0

    def invoke(self, context: InvocationContext) -> IntegerCollectionOutput:
        check_limit(self._length(), "max_collection_size", context.config, "the length of the range")
        return IntegerCollectionOutput(collection=list(range(self.start, self.stop, self.step)))


@invocation("range_of_size", title="Integer Range of Size", tags=["collection", "integer", "size", "range"],
            category="collections")
class RangeOfSizeInvocation(BaseInvocation):
    """Creates a range from start to start + size * step, incremented by step."""

    start: int = InputField(default=0, description="The start of the range")
    size: int = InputField(default=1, gt=0, description="The number of values")
    step: int = InputField(default=1, description="The step of the range")

    @field_validator("size")
    @classmethod
    def _size_within_limit(cls, v: int, info: ValidationInfo) -> int:
        check_limit(v, "max_collection_size", info.context, "the size of the range")
        return v

    def invoke(self, context: InvocationContext) -> IntegerCollectionOutput:
        check_limit(self.size, "max_collection_size", context.config, "the size of the range")
        stop = self.start + self.step * self.size
        return IntegerCollectionOutput(collection=list(range(self.start, stop, self.step)))


@invocation_output("iterate_output")
class IterateInvocationOutput(BaseInvocationOutput):
    """One item of the collection being iterated over."""

    item: Any = OutputField(description="The item being iterated over", title="Collection Item")
    index: int = OutputField(description="The index of the item", title="Index")
    total: int = OutputField(description="The total number of items", title="Total")


@invocation("iterate", title="Iterate", tags=["collection", "iterate"], category="collections", version="1.1.0")
class IterateInvocation(BaseInvocation):
    """Runs the nodes after it once per item of a collection."""

    collection: list[Any] = InputField(
        default_factory=list, description="The list of items to iterate over", input=Input.Connection
    )
    index: int = InputField(default=0, description="The index, set by the engine for each item", ui_hidden=True)

    def invoke(self, context: InvocationContext) -> IterateInvocationOutput:
        return IterateInvocationOutput(
            item=self.collection[self.index], index=self.index, total=len(self.collection)
        )


@invocation_output("collect_output")
class CollectInvocationOutput(BaseInvocationOutput):
    """The collected items, in iteration order."""

    collection: list[Any] = OutputField(description="The collection of input items", title="Collection")


@invocation("collect", title="Collect", tags=["collection", "collect"], category="collections", version="1.1.0")
class CollectInvocation(BaseInvocation):
    """Gathers the items of every iteration (and any collections given) into one list."""

    item: Any | None = InputField(
        default=None, description="The item to collect (all inputs must be of the same type)",
        title="Collection Item", input=Input.Connection,
    )
    collection: list[Any] = InputField(
        default_factory=list, description="An optional collection to append to", input=Input.Connection
    )

    def invoke(self, context: InvocationContext) -> CollectInvocationOutput:
        return CollectInvocationOutput(collection=list(self.collection))


NODES: list[type[BaseInvocation]] = [RangeInvocation, RangeOfSizeInvocation, IterateInvocation, CollectInvocation]
