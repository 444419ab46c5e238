"""How the registry keys and combines the model contributions of plugins (configs, probers).

The checks each contribution passes first are the registry's (:mod:`invoke_host.registry.checks`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Union

from invoke_sdk.model_probing import ModelProber
from invoke_sdk.models import ModelConfigBase, model_config_tag
from pydantic import Discriminator, Tag, TypeAdapter

__all__ = [
    "model_config_adapter",
    "model_config_key",
    "ordered_probers",
]


def model_config_key(cls: type[ModelConfigBase]) -> str:
    """Configs are keyed by their union tag, ``'<type>.<format>'``."""
    return cls.tag()


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
