"""InvokeAI's ``LoadedModel``: here, what ``context.models.load`` returns (invoke_sdk's protocol)."""

from invoke_sdk.models.loading import LoadedModel

__all__ = ["LoadedModel"]
