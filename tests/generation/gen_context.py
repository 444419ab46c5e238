"""An InvocationContext for generation tests: real in-memory tensors, conditioning and PIL images, the real
model cache and the plugin's real loaders. The engine's context replaces it in the host."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from invoke_sdk import BaseInvocation, BaseInvocationOutput, ImageField

from invoke_host.model_cache import ModelCache, ModelsService


class MemoryStore:
    """Objects kept by name, like the host's tensor and conditioning stores."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.items: dict[str, Any] = {}

    def save(self, obj: Any) -> str:
        name = f"{self.prefix}_{uuid.uuid4().hex[:12]}"
        self.items[name] = obj
        return name

    def load(self, name: str) -> Any:
        return self.items[name]


class MemoryImages:
    """PIL images kept by name, with the metadata they were saved with."""

    def __init__(self) -> None:
        self.images: dict[str, Any] = {}
        self.metadata: dict[str, Any] = {}

    def save(self, image: Any, *, category: str = "general", metadata: Mapping[str, Any] | None = None,
             is_intermediate: bool | None = None) -> ImageField:
        name = f"{uuid.uuid4().hex[:12]}.png"
        self.images[name] = image.copy()
        self.metadata[name] = dict(metadata or {})
        return ImageField(image_name=name)

    def get_pil(self, image_name: str, mode: str | None = None) -> Any:
        image = self.images[image_name]
        return image.convert(mode) if mode else image


@dataclass
class Progress:
    """Records progress signals; ``cancel_after`` steps, ``is_canceled()`` turns true."""

    cancel_after: int | None = None
    signals: list[tuple[str, float | None, Any]] = field(default_factory=list)
    checks: int = 0

    def signal_progress(self, message: str, percentage: float | None = None, image: Any = None) -> None:
        self.signals.append((message, percentage, image))

    def is_canceled(self) -> bool:
        self.checks += 1
        return self.cancel_after is not None and len(self.signals) >= self.cancel_after


@dataclass
class GenContext:
    """What a node sees while it runs (the SDK's InvocationContext protocol)."""

    models: ModelsService
    images: MemoryImages = field(default_factory=MemoryImages)
    tensors: MemoryStore = field(default_factory=lambda: MemoryStore("tensor"))
    conditioning: MemoryStore = field(default_factory=lambda: MemoryStore("conditioning"))
    util: Progress = field(default_factory=Progress)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("tests.generation"))
    config: Mapping[str, Any] = field(default_factory=dict)

    def run(self, node: BaseInvocation) -> Any:
        out: BaseInvocationOutput = node.invoke(self)
        return out


def make_context(lookup: Callable[[str], Any], cache: ModelCache | None = None) -> GenContext:
    """A context over the plugin's registered loaders and a fresh (or given) cache."""
    from invoke_diffusers_nodes.loaders import all_loaders

    loaders = {f"{loader.model_type}/{loader.model_format}": loader for loader in all_loaders()}
    cache = cache or ModelCache(ram_limit_bytes=2 * 1024**3, vram_limit_bytes=2 * 1024**3, device="cpu")
    return GenContext(models=ModelsService(lookup, loaders, cache))
