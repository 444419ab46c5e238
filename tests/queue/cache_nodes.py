"""A plugin for the output-cache tests: a ``main/diffusers`` loader that needs no torch, and a node that loads it.

The loader hands back the settings it was given, so a node's output says which config its model was loaded with.
"""

from __future__ import annotations

from typing import Any

from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    InputField,
    InvocationContext,
    ModelIdentifierField,
    OutputField,
    hookimpl,
    invocation,
    invocation_output,
)
from invoke_sdk.hookspecs import RegisterInvocation, RegisterModelLoader
from invoke_sdk.models.loading import config_field

__all__ = ["LOADER", "SettingsLoader", "register_invocations", "register_model_loaders"]


class SettingsLoader:
    """Loads a "model" that is the settings of its config; records each load's prediction type."""

    model_type = "main"
    model_format = "diffusers"

    def __init__(self) -> None:
        self.loads: list[str] = []

    def load(self, config: Any, submodel: str | None, *, dtype: str) -> dict[str, str]:
        prediction = str(config_field(config, "prediction_type"))
        self.loads.append(prediction)
        return {"prediction_type": prediction}

    def device_available(self, device: str) -> bool:
        return False


LOADER = SettingsLoader()


@invocation_output("cache_probe_output")
class ProbeOutput(BaseInvocationOutput):
    prediction_type: str = OutputField()


@invocation("cache_model_probe", title="Model probe")
class ModelProbeInvocation(BaseInvocation):
    """Loads its model and says the prediction type it was loaded with (cacheable, like any model node)."""

    model: ModelIdentifierField = InputField()

    def invoke(self, context: InvocationContext) -> ProbeOutput:
        with context.models.load(self.model) as model:
            return ProbeOutput(prediction_type=model["prediction_type"])


@hookimpl
def register_invocations(register: RegisterInvocation) -> None:
    register(ModelProbeInvocation)


@hookimpl
def register_model_loaders(register: RegisterModelLoader) -> None:
    register(LOADER)
