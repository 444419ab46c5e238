"""Test a node without a server: :func:`run_node` with a :class:`FakeContext` that keeps everything in memory.

Example::

    from invoke_sdk.testing import run_node
    out = run_node(MyNode(a=1, b=2))
    assert out.value == 3

To run whole graphs through the real engine, use the ``invoke_host`` pytest fixture of the host.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from invoke_sdk.context import InvocationContext
from invoke_sdk.fields import ImageField, ModelIdentifierField, field_extra
from invoke_sdk.invocation import BaseInvocation, BaseInvocationOutput

__all__ = [
    "FakeContext",
    "FakeImages",
    "FakeModels",
    "FakeObjects",
    "FakeUtil",
    "ProgressCall",
    "run_node",
]

TNode = TypeVar("TNode", bound=BaseInvocation)


class FakeImages:
    """Images kept in a dict, named ``image_<n>.png``."""

    def __init__(self) -> None:
        self.saved: dict[str, Any] = {}
        self.metadata: dict[str, Mapping[str, Any] | None] = {}
        self._counter = itertools.count()

    def save(
        self,
        image: Any,
        *,
        category: str = "general",
        metadata: Mapping[str, Any] | None = None,
        is_intermediate: bool | None = None,
    ) -> ImageField:
        """Keep ``image`` and return a reference to it."""
        name = f"image_{next(self._counter)}.png"
        self.saved[name] = image
        self.metadata[name] = metadata
        return ImageField(image_name=name)

    def get_pil(self, image_name: str, mode: str | None = None) -> Any:
        """An image saved earlier (or put in :attr:`saved` by the test), converted to ``mode`` if given."""
        try:
            image = self.saved[image_name]
        except KeyError:
            raise KeyError(f"no image named {image_name!r}; put one in context.images.saved first") from None
        return image.convert(mode) if mode is not None else image


class FakeObjects:
    """Tensors or conditioning kept in a dict."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.saved: dict[str, Any] = {}
        self._counter = itertools.count()

    def save(self, obj: Any) -> str:
        """Keep ``obj`` and return its name."""
        name = f"{self.prefix}_{next(self._counter)}"
        self.saved[name] = obj
        return name

    def load(self, name: str) -> Any:
        """An object saved earlier."""
        try:
            return self.saved[name]
        except KeyError:
            raise KeyError(f"no {self.prefix} named {name!r}") from None


class FakeModels:
    """Models by key: put the objects a node should get into :attr:`models`."""

    def __init__(self, models: Mapping[str, Any] | None = None) -> None:
        self.models: dict[str, Any] = dict(models or {})

    def exists(self, key: str) -> bool:
        """Whether a model with this key was given."""
        return key in self.models

    def load(self, model: ModelIdentifierField | str, submodel: str | None = None) -> AbstractContextManager[Any]:
        """The model given under this key (``key/submodel`` for a submodel, if given that way)."""
        key = model if isinstance(model, str) else model.key
        sub = submodel or (None if isinstance(model, str) else model.submodel_type)
        for candidate in ([f"{key}/{sub}"] if sub else []) + [key]:
            if candidate in self.models:
                return _hold(self.models[candidate])
        raise KeyError(f"no model {key!r} in the fake context; add it to context.models.models")

    def search_by_attrs(
        self, name: str | None = None, base: str | None = None, type: str | None = None  # noqa: A002 - InvokeAI's name
    ) -> list[Any]:
        """No configs: the fake context holds model objects, not installed models."""
        return []


@contextmanager
def _hold(obj: Any) -> Iterator[Any]:
    yield obj


@dataclass(frozen=True)
class ProgressCall:
    """One call a node made to ``signal_progress``."""

    message: str
    percentage: float | None
    image: Any = None


class FakeUtil:
    """Records progress; set :attr:`canceled` to make ``is_canceled()`` answer True."""

    def __init__(self) -> None:
        self.progress: list[ProgressCall] = []
        self.canceled = False

    def signal_progress(self, message: str, percentage: float | None = None, image: Any = None) -> None:
        """Record a progress report."""
        self.progress.append(ProgressCall(message, percentage, image))

    def is_canceled(self) -> bool:
        """Whether the test marked the run canceled."""
        return self.canceled


@dataclass
class FakeContext:
    """An in-memory ``InvocationContext`` for unit tests of nodes."""

    images: FakeImages = field(default_factory=FakeImages)
    tensors: FakeObjects = field(default_factory=lambda: FakeObjects("tensor"))
    conditioning: FakeObjects = field(default_factory=lambda: FakeObjects("conditioning"))
    models: FakeModels = field(default_factory=FakeModels)
    util: FakeUtil = field(default_factory=FakeUtil)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("invoke_sdk.testing"))
    config: Mapping[str, Any] = field(default_factory=dict)


def run_node(node: BaseInvocation, context: FakeContext | None = None) -> Any:
    """Run one node with ``context`` (a fresh :class:`FakeContext` if None) and return its output.

    Refuses a node whose required inputs were left empty (in a graph an edge would fill them), and
    an output that is not a ``BaseInvocationOutput``.
    """
    missing = [
        name
        for name in type(node).input_field_names()
        if field_extra(type(node).model_fields[name]).get("orig_required") and getattr(node, name) is None
    ]
    if missing:
        raise ValueError(f"required inputs of {type(node).__name__} left empty: {', '.join(missing)}")
    # FakeContext's members are concrete fakes (so tests can inspect them), not the protocol's attribute types.
    output = node.invoke(cast(InvocationContext, context or FakeContext()))
    if not isinstance(output, BaseInvocationOutput):
        raise TypeError(f"{type(node).__name__}.invoke() returned {type(output).__name__}, not a node output")
    return output
