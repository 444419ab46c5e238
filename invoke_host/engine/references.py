"""What a node's inputs or output name outside themselves: images, stored tensors and conditioning, models.

A cached output is only right while what it names still exists and is unchanged: the output cache indexes its
entries by these references, so deleting an image or editing a model finds the entries to drop without a scan.

Finding them must cost next to nothing for the many nodes that hold only numbers and strings: which fields of a
model class can hold a reference is worked out once per class from its annotations, and only those fields are
walked. A field typed ``Any`` (or anything not understood) is walked by value.
"""

from __future__ import annotations

import enum
import threading
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from invoke_sdk import ConditioningField, ImageField, LatentsField, ModelIdentifierField, TensorField
from pydantic import BaseModel

__all__ = ["Reference", "ReferenceKind", "references"]

ReferenceKind = typing.Literal["image", "tensor", "conditioning", "model"]


class Reference(NamedTuple):
    """One thing an output or input names: an image, a stored tensor (latents too), conditioning, or a model."""

    kind: ReferenceKind
    name: str
    """The image name, the stored object's name, or the model's key."""


_REFERENCE_OF: dict[type[BaseModel], Callable[[Any], Reference]] = {
    ImageField: lambda f: Reference("image", f.image_name),
    LatentsField: lambda f: Reference("tensor", f.latents_name),  # latents are saved through context.tensors
    TensorField: lambda f: Reference("tensor", f.tensor_name),
    ConditioningField: lambda f: Reference("conditioning", f.conditioning_name),
    ModelIdentifierField: lambda f: Reference("model", f.key),
}
_NEVER: frozenset[Any] = frozenset({int, float, str, bool, bytes, type(None)})
_SCALARS: tuple[type, ...] = (int, float, str, bool, bytes, type(None), enum.Enum)

# Per model class: the fields that may hold a reference, worked out on first use. Only finished plans are
# stored here (read without the lock); a class being worked out sits in _building, so a model that refers to
# itself counts as "may hold one" instead of recursing for ever.
_plans: dict[type[BaseModel], tuple[str, ...]] = {}
_plans_lock = threading.RLock()
_building: set[type[BaseModel]] = set()


def _plan(cls: type[BaseModel]) -> tuple[str, ...]:
    plan = _plans.get(cls)
    if plan is not None:
        return plan
    with _plans_lock:
        plan = _plans.get(cls)
        if plan is not None:
            return plan
        _building.add(cls)
        try:
            plan = tuple(name for name, info in cls.model_fields.items() if _may_hold(info.annotation))
        finally:
            _building.discard(cls)
        _plans[cls] = plan
        return plan


def _may_hold(annotation: Any) -> bool:
    """Whether a value of this annotation can contain a reference (unknown annotations: yes)."""
    if annotation in _REFERENCE_OF:
        return True
    if annotation in _NEVER:
        return False
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return False
    if origin is typing.Annotated:
        return _may_hold(typing.get_args(annotation)[0])
    if origin is not None:  # list[X], dict[K, V], X | None, tuple[X, ...] ...
        return any(_may_hold(arg) for arg in typing.get_args(annotation) if arg is not Ellipsis)
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return annotation in _building or bool(_plan(annotation))
        if issubclass(annotation, _SCALARS):
            return False
    # Any, object, a TypeVar, a forward reference that was never resolved ...: look at the values.
    return True


def _walk(value: Any) -> Iterator[Reference]:
    if isinstance(value, _SCALARS):
        return
    if isinstance(value, BaseModel):
        make = _REFERENCE_OF.get(type(value))
        if make is not None:
            yield make(value)
            return
        fields = value.__dict__
        for name in _plan(type(value)):
            yield from _walk(fields.get(name))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _walk(item)


def references(model: BaseModel) -> frozenset[Reference]:
    """Every reference held by ``model``'s fields (a node's inputs or an output), at any depth."""
    plan = _plan(type(model))
    if not plan:
        return frozenset()
    fields = model.__dict__
    return frozenset(ref for name in plan for ref in _walk(fields.get(name)))
