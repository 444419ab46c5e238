"""Part of InvokeAI's import tree, provided by invokeai-compat."""
