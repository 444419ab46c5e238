"""How the registry keys and combines the model contributions of plugins (configs, probers).

The checks each contribution passes first are the registry's (:mod:`invoke_host.registry.checks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Union

from invoke_sdk.models import ModelConfigBase, model_config_tag
from invoke_sdk.models.probing import ModelProber
from pydantic import Discriminator, Tag, TypeAdapter

__all__ = [
    "model_config_adapter",
    "model_config_key",
    "ordered_probers",
]


def model_config_key(cls: type[ModelConfigBase]) -> str:
    """Configs are keyed by their union tag, ``'<type>.<format>'``."""
    return cls.tag()


def model_config_adapter(configs: Mapping[str, type[ModelConfigBase]]) -> TypeAdapter[Any] | None:
    """The TypeAdapter of the discriminated union of ``configs`` (tag -> class, as registered; sorted by tag),
    or None when there are none."""
    if not configs:
        return None
    # The tags come from the registry's keys: working one out (cls.tag()) resolves every annotation of the class.
    members = tuple(Annotated[configs[tag], Tag(tag)] for tag in sorted(configs))
    union = Annotated[Union[members], Discriminator(model_config_tag)]  # noqa: UP007 - built at run time
    return TypeAdapter(union)


def ordered_probers(probers: Iterable[ModelProber]) -> list[ModelProber]:
    """Probers in the order they are asked: ascending ``order``, then ``name``."""
    return sorted(probers, key=lambda p: (p.order, p.name))
