"""What a model-loader plugin implements, and what a node gets back from ``context.models.load``.

The host owns the model cache (RAM and VRAM levels, eviction, devices); a loader only turns an
installed model's config into a model object in memory. Loaders are registered per model type and
format with :func:`~invoke_sdk.hookspecs.register_model_loaders` and are looked up by
``"<type>/<format>"``, for example ``"main/diffusers"`` or ``"lora/lora"``.

The SDK knows nothing of torch: a loaded model is an ``Any``. The cache measures and moves a model
by duck typing: an object with ``parameters()``/``buffers()`` and ``to(device)`` (a torch module) is
measured from its tensors and moved to the execution device; a mapping of tensors (a LoRA state
dict) is measured from its values and stays where the loader put it; anything else (a tokenizer, a
scheduler) counts as size 0 and is never moved.

A loader with settings of its own may define ``configure(settings)``: the host calls it once with its
config (``HostConfig``), when the registry is frozen and before the first load (not once per device or per run),
and the loader reads its fields by name with ``getattr``.
It is optional, so it is not part of the :class:`ModelLoader` protocol.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = [
    "LoadedModel",
    "ModelConfigLike",
    "ModelLoader",
    "config_field",
    "loader_key",
]


@runtime_checkable
class ModelConfigLike(Protocol):
    """The part of an installed model's config that loaders read.

    The model manager's config classes satisfy it. A loader may also read ``variant``,
    ``prediction_type``, ``config_path`` and ``upcast_attention`` where a config has them: read those
    with :func:`config_field`, since not every model type carries them.
    """

    key: str
    """The model's key in the model records."""
    path: str
    """Where the model lies: a diffusers folder or a single file."""
    type: str
    """The model type: ``main``, ``vae``, ``lora`` ..."""
    format: str
    """The model format: ``diffusers``, ``checkpoint``, ``lora`` ..."""
    base: str
    """The base architecture: ``sd-1``, ``sd-2``, ``sdxl`` ..."""


def config_field(config: Any, name: str, default: Any = None) -> Any:
    """An optional config field (``variant``, ``prediction_type``, ``config_path`` ...) or ``default``.

    Enum values are returned as their plain value, so loaders compare with strings.
    """
    value = getattr(config, name, default)
    return getattr(value, "value", value)


def loader_key(model_type: str, model_format: str) -> str:
    """The registry key of the loader for one model type and format: ``"<type>/<format>"``."""
    return f"{model_type}/{model_format}"


@runtime_checkable
class ModelLoader(Protocol):
    """Loads models of one type and format from disk into CPU memory.

    ``load`` must not execute code from the model file: load safetensors, or pickled checkpoints
    only after the model manager's scan passed. It loads onto the CPU in ``dtype``; the host's
    cache moves the result to the execution device while a node uses it.
    """

    model_type: str
    """The model type this loader handles, e.g. ``"main"``."""
    model_format: str
    """The model format this loader handles, e.g. ``"diffusers"`` or ``"checkpoint"``."""

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        """Load the model (or one submodel: ``unet``, ``vae``, ``text_encoder`` ...) onto the CPU.

        ``dtype`` is ``"float16"``, ``"bfloat16"`` or ``"float32"``. Raise ``ValueError`` with a
        message a person can act on when the submodel does not exist or the files are unusable.
        """
        ...

    def device_available(self, device: str) -> bool:
        """Whether this loader's library can run models on ``device`` (``cuda``, ``mps``, ``cpu``).

        The host asks this instead of importing a tensor library itself.
        """
        ...


@runtime_checkable
class LoadedModel(Protocol):
    """What ``context.models.load(...)`` returns: a handle to a cached model.

    ``with handle as model:`` locks the model on the execution device for the block and gives the
    model object; the cache never evicts or moves a locked model. Outside the block the model may
    be moved to RAM or evicted, so do not keep the object beyond it. Handles may be entered again
    and nested (locks count).
    """

    config: Any
    """The installed model's config."""
    submodel: str | None
    """The submodel this handle holds, or None for the whole model."""

    def __enter__(self) -> Any:
        """Lock the model on the execution device and return it."""
        ...

    def __exit__(self, *exc_info: object) -> None:
        """Unlock the model; the cache may move or evict it from now on."""
        ...
