"""Primitive values and their collections: ``integer``, ``float``, ``string``, ``boolean`` and ``*_collection``."""

from __future__ import annotations

from invoke_sdk import (
    BaseInvocation,
    InputField,
    InvocationContext,
    invocation,
)
from invoke_sdk.outputs import (
    BooleanCollectionOutput,
    BooleanOutput,
    FloatCollectionOutput,
    FloatOutput,
    IntegerCollectionOutput,
    IntegerOutput,
    StringCollectionOutput,
    StringOutput,
)

__all__ = [
    "NODES",
    "BooleanCollectionOutput",
    "BooleanOutput",
    "FloatCollectionOutput",
    "FloatOutput",
    "IntegerCollectionOutput",
    "IntegerOutput",
    "StringCollectionOutput",
    "StringOutput",
]


@invocation("integer", title="Integer Primitive", tags=["primitives", "integer"], category="primitives")
class IntegerInvocation(BaseInvocation):
    """An integer primitive value."""

    value: int = InputField(default=0, description="The integer value")

    def invoke(self, context: InvocationContext) -> IntegerOutput:
        return IntegerOutput(value=self.value)


@invocation(
    "integer_collection", title="Integer Collection Primitive", tags=["primitives", "integer", "collection"],
    category="primitives",
)
class IntegerCollectionInvocation(BaseInvocation):
    """A collection of integer primitive values."""

    collection: list[int] = InputField(default_factory=list, description="The collection of integer values")

    def invoke(self, context: InvocationContext) -> IntegerCollectionOutput:
        return IntegerCollectionOutput(collection=self.collection)


@invocation("float", title="Float Primitive", tags=["primitives", "float"], category="primitives")
class FloatInvocation(BaseInvocation):
    """A float primitive value."""

    value: float = InputField(default=0.0, description="The float value")

    def invoke(self, context: InvocationContext) -> FloatOutput:
        return FloatOutput(value=self.value)


@invocation(
    "float_collection", title="Float Collection Primitive", tags=["primitives", "float", "collection"],
    category="primitives",
)
class FloatCollectionInvocation(BaseInvocation):
    """A collection of float primitive values."""

    collection: list[float] = InputField(default_factory=list, description="The collection of float values")

    def invoke(self, context: InvocationContext) -> FloatCollectionOutput:
        return FloatCollectionOutput(collection=self.collection)


@invocation("string", title="String Primitive", tags=["primitives", "string"], category="primitives")
class StringInvocation(BaseInvocation):
    """A string primitive value."""

    value: str = InputField(default="", description="The string value")

    def invoke(self, context: InvocationContext) -> StringOutput:
        return StringOutput(value=self.value)


@invocation(
    "string_collection", title="String Collection Primitive", tags=["primitives", "string", "collection"],
    category="primitives",
)
class StringCollectionInvocation(BaseInvocation):
    """A collection of string primitive values."""

    collection: list[str] = InputField(default_factory=list, description="The collection of string values")

    def invoke(self, context: InvocationContext) -> StringCollectionOutput:
        return StringCollectionOutput(collection=self.collection)


@invocation("boolean", title="Boolean Primitive", tags=["primitives", "boolean"], category="primitives")
class BooleanInvocation(BaseInvocation):
    """A boolean primitive value."""

    value: bool = InputField(default=False, description="The boolean value")

    def invoke(self, context: InvocationContext) -> BooleanOutput:
        return BooleanOutput(value=self.value)


@invocation(
    "boolean_collection", title="Boolean Collection Primitive", tags=["primitives", "boolean", "collection"],
    category="primitives",
)
class BooleanCollectionInvocation(BaseInvocation):
    """A collection of boolean primitive values."""

    collection: list[bool] = InputField(default_factory=list, description="The collection of boolean values")

    def invoke(self, context: InvocationContext) -> BooleanCollectionOutput:
        return BooleanCollectionOutput(collection=self.collection)


NODES: list[type[BaseInvocation]] = [
    IntegerInvocation,
    IntegerCollectionInvocation,
    FloatInvocation,
    FloatCollectionInvocation,
    StringInvocation,
    StringCollectionInvocation,
    BooleanInvocation,
    BooleanCollectionInvocation,
]
