"""Entry module of the spandrel nodes: the config class, prober, loader and the image-to-image node.

Kept light: torch and spandrel are imported inside the functions that use them.
"""

from __future__ import annotations

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterInvocation, RegisterModelConfig, RegisterModelLoader, RegisterModelProber

from invoke_spandrel_nodes.config import SpandrelImageToImageConfig
from invoke_spandrel_nodes.prober import SpandrelProber

__all__ = ["register_invocations", "register_model_configs", "register_model_loaders", "register_model_probers"]


@hookimpl
def register_model_configs(register: RegisterModelConfig) -> None:
    register(SpandrelImageToImageConfig)


@hookimpl
def register_model_probers(register: RegisterModelProber) -> None:
    register(SpandrelProber())


@hookimpl
def register_model_loaders(register: RegisterModelLoader) -> None:
    from invoke_spandrel_nodes.loader import SpandrelLoader

    register(SpandrelLoader())


@hookimpl
def register_invocations(register: RegisterInvocation) -> None:
    from invoke_spandrel_nodes.upscale_node import SpandrelImageToImageInvocation

    register(SpandrelImageToImageInvocation)
