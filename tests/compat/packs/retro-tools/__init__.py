# ruff: noqa: F401, N999 - written as InvokeAI pack authors write them (a folder name, bare imports)
# An InvokeAI community pack as InvokeAI users write them: a folder whose __init__.py imports its node modules.
from .image_nodes import MetadataMakerInvocation, PosterizeInvocation, SolidColorInvocation
from .model_nodes import FetchWeightsInvocation, LoadRemoteInvocation
from .prompt_nodes import PromptStyleInvocation, WrongOutputInvocation

print("retro-tools: 5 nodes loaded")  # packs print at import time; stdout JSON must survive it
