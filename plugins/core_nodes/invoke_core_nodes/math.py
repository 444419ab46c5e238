"""Arithmetic on integers and floats, conversions between them, and a seeded random integer."""

from __future__ import annotations

import math
import random
from typing import Literal

from invoke_sdk import BaseInvocation, InputField, InvocationContext, invocation

from invoke_core_nodes.primitives import FloatOutput, IntegerOutput

__all__ = ["NODES"]

INT32_MAX = 2**31 - 1


@invocation("add", title="Add Integers", tags=["math", "add"], category="math")
class AddInvocation(BaseInvocation):
    """Adds two integers."""

    a: int = InputField(default=0, description="The first number")
    b: int = InputField(default=0, description="The second number")

    def invoke(self, context: InvocationContext) -> IntegerOutput:
        return IntegerOutput(value=self.a + self.b)


@invocation("sub", title="Subtract Integers", tags=["math", "subtract"], category="math")
class SubtractInvocation(BaseInvocation):
    """Subtracts b from a."""

    a: int = InputField(default=0, description="The first number")
    b: int = InputField(default=0, description="The second number")

    def invoke(self, context: InvocationContext) -> IntegerOutput:
        return IntegerOutput(value=self.a - self.b)


@invocation("mul", title="Multiply Integers", tags=["math", "multiply"], category="math")
class MultiplyInvocation(BaseInvocation):
    """Multiplies two integers."""

    a: int = InputField(default=0, description="The first number")
    b: int = InputField(default=0, description="The second number")

    def invoke(self, context: InvocationContext) -> IntegerOutput:
        return IntegerOutput(value=self.a * self.b)


@invocation("div", title="Divide Integers", tags=["math", "divide"], category="math")
class DivideInvocation(BaseInvocation):
    """Divides a by b, truncating toward zero like InvokeAI's ``int(a / b)``."""

    a: int = InputField(default=0, description="The first number")
    b: int = InputField(default=0, description="The second number")

    def invoke(self, context: InvocationContext) -> IntegerOutput:
        if self.b == 0:
            raise ZeroDivisionError(f"cannot divide {self.a} by zero (input b of node {self.id})")
        return IntegerOutput(value=int(self.a / self.b))


@invocation("add_float", title="Add Floats", tags=["math", "add", "float"], category="math")
class AddFloatInvocation(BaseInvocation):
    """Adds two floats."""

    a: float = InputField(default=0.0, description="The first number")
    b: float = InputField(default=0.0, description="The second number")

    def invoke(self, context: InvocationContext) -> FloatOutput:
        return FloatOutput(value=self.a + self.b)


@invocation("sub_float", title="Subtract Floats", tags=["math", "subtract", "float"], category="math")
class SubtractFloatInvocation(BaseInvocation):
    """Subtracts b from a."""

    a: float = InputField(default=0.0, description="The first number")
    b: float = InputField(default=0.0, description="The second number")

    def invoke(self, context: InvocationContext) -> FloatOutput:
        return FloatOutput(value=self.a - self.b)


@invocation("mul_float", title="Multiply Floats", tags=["math", "multiply", "float"], category="math")
class MultiplyFloatInvocation(BaseInvocation):
    """Multiplies two floats."""

    a: float = InputField(default=0.0, description="The first number")
    b: float = InputField(default=0.0, description="The second number")

    def invoke(self, context: InvocationContext) -> FloatOutput:
        return FloatOutput(value=self.a * self.b)


@invocation("div_float", title="Divide Floats", tags=["math", "divide", "float"], category="math")
class DivideFloatInvocation(BaseInvocation):
    """Divides a by b."""

    a: float = InputField(default=0.0, description="The first number")
    b: float = InputField(default=0.0, description="The second number")

    def invoke(self, context: InvocationContext) -> FloatOutput:
        if self.b == 0:
            raise ZeroDivisionError(f"cannot divide {self.a} by zero (input b of node {self.id})")
        return FloatOutput(value=self.a / self.b)


@invocation("rand_int", title="Random Integer", tags=["math", "random"], category="math", version="1.0.1",
            use_cache=False)
class RandomIntInvocation(BaseInvocation):
    """Outputs a random integer in [low, high); the same seed always gives the same number."""

    low: int = InputField(default=0, description="The inclusive low value")
    high: int = InputField(default=INT32_MAX, description="The exclusive high value")
    seed: int | None = InputField(default=None, description="Seed for the generator (leave empty for a random one)")

    def invoke(self, context: InvocationContext) -> IntegerOutput:
        if self.high <= self.low:
            raise ValueError(f"high ({self.high}) must be greater than low ({self.low})")
        rng = random.Random(self.seed) if self.seed is not None else random.SystemRandom()
        return IntegerOutput(value=rng.randrange(self.low, self.high))


@invocation("float_to_int", title="Float To Integer", tags=["math", "round", "integer", "float", "convert"],
            category="math")
class FloatToIntegerInvocation(BaseInvocation):
    """Rounds a float to an integer multiple of ``multiple``."""

    value: float = InputField(default=0.0, description="The value to round")
    multiple: int = InputField(default=1, ge=1, description="The multiple to round to")
    method: Literal["Nearest", "Floor", "Ceiling", "Truncate"] = InputField(
        default="Nearest", description="The method to use for rounding"
    )

    def invoke(self, context: InvocationContext) -> IntegerOutput:
        scaled = self.value / self.multiple
        rounded = {
            "Nearest": round,
            "Floor": math.floor,
            "Ceiling": math.ceil,
            "Truncate": math.trunc,
        }[self.method](scaled)
        return IntegerOutput(value=int(rounded) * self.multiple)


@invocation("int_to_float", title="Integer To Float", tags=["math", "integer", "float", "convert"], category="math")
class IntegerToFloatInvocation(BaseInvocation):
    """Converts an integer to a float."""

    value: int = InputField(default=0, description="The integer to convert")

    def invoke(self, context: InvocationContext) -> FloatOutput:
        return FloatOutput(value=float(self.value))


NODES: list[type[BaseInvocation]] = [
    AddInvocation,
    SubtractInvocation,
    MultiplyInvocation,
    DivideInvocation,
    AddFloatInvocation,
    SubtractFloatInvocation,
    MultiplyFloatInvocation,
    DivideFloatInvocation,
    RandomIntInvocation,
    FloatToIntegerInvocation,
    IntegerToFloatInvocation,
]
