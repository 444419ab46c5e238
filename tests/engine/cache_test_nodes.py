"""Nodes for the output-cache tests: outputs and inputs that name images, stored latents and models."""

from __future__ import annotations

import time
from collections.abc import Callable

from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    ImageField,
    InputField,
    InvocationContext,
    LatentsField,
    ModelIdentifierField,
    OutputField,
    hookimpl,
    invocation,
    invocation_output,
)
from invoke_sdk.hookspecs import RegisterInvocation
from pydantic import BaseModel

CALLS: list[str] = []
DURING_INVOKE: list[Callable[[], None]] = []
"""Called inside ``t_ref_during`` while it runs (a test's way to change the world mid-node)."""


@invocation_output("t_ref_output")
class TRefOutput(BaseInvocationOutput):
    image: ImageField | None = OutputField(default=None)
    latents: LatentsField | None = OutputField(default=None)
    value: int = OutputField(default=0)


@invocation("t_image_ref")
class ImageRefInvocation(BaseInvocation):
    """Names an image in its output (as a node that saved one would)."""

    name: str = InputField(default="img")

    def invoke(self, context: InvocationContext) -> TRefOutput:
        CALLS.append(self.id)
        return TRefOutput(image=ImageField(image_name=self.name))


@invocation("t_image_in")
class ImageInInvocation(BaseInvocation):
    """Takes an image as input and names nothing in its output."""

    image: ImageField = InputField()

    def invoke(self, context: InvocationContext) -> TRefOutput:
        CALLS.append(self.id)
        return TRefOutput(value=len(self.image.image_name))


@invocation("t_latents_ref")
class LatentsRefInvocation(BaseInvocation):
    """Names stored latents in its output."""

    name: str = InputField()

    def invoke(self, context: InvocationContext) -> TRefOutput:
        CALLS.append(self.id)
        return TRefOutput(latents=LatentsField(latents_name=self.name))


class UNetLike(BaseModel):
    """Models nested in an input, as InvokeAI's UNetField holds its unet and loras."""

    unet: ModelIdentifierField
    loras: list[ModelIdentifierField] = []


@invocation("t_model_in")
class ModelInInvocation(BaseInvocation):
    unet: UNetLike = InputField()

    def invoke(self, context: InvocationContext) -> TRefOutput:
        CALLS.append(self.id)
        return TRefOutput(value=len(self.unet.loras))


@invocation("t_ref_during")
class RefDuringInvocation(BaseInvocation):
    """Names an image, and runs DURING_INVOKE while it works."""

    name: str = InputField(default="img")

    def invoke(self, context: InvocationContext) -> TRefOutput:
        CALLS.append(self.id)
        for hook in DURING_INVOKE:
            hook()
        return TRefOutput(image=ImageField(image_name=self.name))


@invocation("t_slow")
class SlowInvocation(BaseInvocation):
    """Names nothing; takes at least ``seconds`` to run (a sleep is never shorter), like a node worth caching."""

    seconds: float = InputField(default=0.0)
    value: int = InputField(default=0)

    def invoke(self, context: InvocationContext) -> TRefOutput:
        CALLS.append(self.id)
        time.sleep(self.seconds)
        return TRefOutput(value=self.value)


@hookimpl
def register_invocations(register: RegisterInvocation) -> None:
    for node in (ImageRefInvocation, ImageInInvocation, LatentsRefInvocation, ModelInInvocation, RefDuringInvocation,
                 SlowInvocation):
        register(node)
