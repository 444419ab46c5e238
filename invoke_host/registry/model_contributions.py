"""How the registry keys and combines the model contributions of plugins (configs, probers).

The checks each contribution passes first are the registry's (:mod:`invoke_host.registry.checks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Union
from weakref import WeakKeyDictionary

from invoke_sdk.models import ModelConfigBase, model_config_tag
from invoke_sdk.models.probing import ModelProber
from pydantic import Discriminator, Tag, TypeAdapter

__all__ = [
    "config_tag_of",
    "model_config_adapter",
    "model_config_key",
    "ordered_probers",
]


# ``cls.tag()`` reads two field annotations (every annotation of the class, 1-2 ms, where pydantic left one
# unresolved); the check and the key both need it. Weak keys: a test's throwaway config class goes with its tag.
_tags: WeakKeyDictionary[type[ModelConfigBase], str] = WeakKeyDictionary()


def config_tag_of(cls: type[ModelConfigBase]) -> str:
    """``cls.tag()``, worked out once per class (it raises ``TypeError`` for a class without one)."""
    found = _tags.get(cls)
    if found is None:
        found = _tags[cls] = cls.tag()
    return found


def model_config_key(cls: type[ModelConfigBase]) -> str:
    """Configs are keyed by their union tag, ``'<type>.<format>'``."""
    return config_tag_of(cls)


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
