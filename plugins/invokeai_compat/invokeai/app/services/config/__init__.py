"""InvokeAI's config package (``from invokeai.app.services.config import InvokeAIAppConfig``)."""

from invokeai.app.services.config.config_default import InvokeAIAppConfig, get_config

__all__ = ["InvokeAIAppConfig", "get_config"]
