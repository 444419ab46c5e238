# ruff: noqa: F401 - written as InvokeAI pack authors write them (bare imports)
from .nodes import OldStyleInvocation
