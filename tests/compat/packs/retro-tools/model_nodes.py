from pathlib import Path

from invokeai.invocation_api import (
    BaseInvocation,
    InputField,
    InvocationContext,
    StringOutput,
    invocation,
)


def _read_header(path: Path) -> dict:
    # A pack's own loader, as InvokeAI's annotator nodes pass one (HEDEdgeDetector.load_model ...).
    data = path.read_bytes()
    return {"size": len(data), "head": data[:8].hex()}


@invocation("retro_fetch_weights", title="Fetch Weights", tags=["model"], category="model", version="1.0.0")
class FetchWeightsInvocation(BaseInvocation):
    """Download a file as InvokeAI's annotator nodes do, and say what arrived."""

    source: str = InputField(description="A URL or a Hugging Face repo source")

    def invoke(self, context: InvocationContext) -> StringOutput:
        path = context.models.download_and_cache_model(self.source)
        return StringOutput(value=f"{path.name}|{path.stat().st_size}|{path}")


@invocation("retro_load_remote", title="Load Remote Weights", tags=["model"], category="model", version="1.0.0")
class LoadRemoteInvocation(BaseInvocation):
    """Load a downloaded file through the model cache with the pack's own loader."""

    source: str = InputField(description="A URL or a Hugging Face repo source")

    def invoke(self, context: InvocationContext) -> StringOutput:
        loaded = context.models.load_remote_model(self.source, _read_header)
        with loaded as model:
            first = dict(model)
        with loaded.model_on_device() as (state_dict, model):
            assert state_dict is None and model == first
        return StringOutput(value=f"{first['size']}|{first['head']}")
