"""How the registry checks and combines the model contributions of plugins (configs, probers)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Union

from invoke_sdk.models import ModelConfigBase, model_config_tag
from invoke_sdk.models.probing import ModelProber
from pydantic import Discriminator, Tag, TypeAdapter

__all__ = [
    "check_model_config",
    "check_model_prober",
    "model_config_adapter",
    "model_config_key",
    "ordered_probers",
]


def _refuse(message: str) -> Exception:
    # Imported here: the registry imports this module, and RegistrationError lives in the registry.
    from invoke_host.registry import RegistrationError

    return RegistrationError(message)


def check_model_config(cls: Any) -> None:
    """Refuse anything but a ModelConfigBase subclass with ``type`` and ``format`` pinned by ``Literal``."""
    if not (isinstance(cls, type) and issubclass(cls, ModelConfigBase)):
        raise _refuse(f"{cls!r} is not a subclass of invoke_sdk.models.ModelConfigBase")
    try:
        cls.tag()
        cls.model_rebuild(force=True)
    except Exception as exc:
        raise _refuse(f"model config {cls.__module__}.{cls.__qualname__} is refused: {exc}") from exc


def model_config_key(cls: type[ModelConfigBase]) -> str:
    """Configs are keyed by their union tag, ``'<type>.<format>'``."""
    return cls.tag()


def check_model_prober(prober: Any) -> None:
    """Refuse a prober without a name, an integer order, or a probe method."""
    if not isinstance(prober, ModelProber) or not isinstance(getattr(prober, "name", None), str):
        raise _refuse(f"{prober!r} is not a model prober (it needs name, order, recognises and probe())")
    if not isinstance(prober.order, int):
        raise _refuse(f"model prober {prober.name!r} has a non-integer order {prober.order!r}")


def model_config_adapter(configs: Iterable[type[ModelConfigBase]]) -> TypeAdapter[Any] | None:
    """The TypeAdapter of the discriminated union of ``configs`` (sorted by tag), or None when there are none."""
    classes = sorted(configs, key=lambda c: c.tag())
    if not classes:
        return None
    members = tuple(Annotated[cls, Tag(cls.tag())] for cls in classes)
    union = Annotated[Union[members], Discriminator(model_config_tag)]  # noqa: UP007 - built at run time
    return TypeAdapter(union)


def ordered_probers(probers: Iterable[ModelProber]) -> list[ModelProber]:
    """Probers in the order they are asked: ascending ``order``, then ``name``."""
    return sorted(probers, key=lambda p: (p.order, p.name))
