"""Test a node without a server: :func:`run_node` with a :class:`FakeContext` that keeps everything in memory.

Example::

    from invoke_sdk.testing import run_node
    out = run_node(MyNode(a=1, b=2))
    assert out.value == 3

To test a node migration, :func:`migrate_node` upgrades a node's dict as the server would::

    from invoke_sdk.testing import migrate_node
    node = migrate_node(my_pack.plugin, {"id": "b", "type": "my_blur", "version": "1.0.0", "radius": 2}, MyBlur)
    assert node.sigma == 2

To run whole graphs through the real engine, use the ``invoke_host`` pytest fixture of the host.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from invoke_sdk.context import InvocationContext
from invoke_sdk.fields import ImageField, ModelIdentifierField, field_extra
from invoke_sdk.images import ImageCategory, ImageOrigin, ImageRecord
from invoke_sdk.invocation import BaseInvocation, BaseInvocationOutput
from invoke_sdk.node_migrations import NodeMigration, upgrade_node

__all__ = [
    "FakeContext",
    "FakeImages",
    "FakeModels",
    "FakeObjects",
    "FakeUtil",
    "ProgressCall",
    "migrate_node",
    "node_migrations_of",
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

    def get_path(self, image_name: str, thumbnail: bool = False) -> Path:
        """Fake images have no files: a test that needs one writes it and patches this method."""
        raise FileNotFoundError(f"fake image {image_name!r} has no file on disk")

    def get_dto(self, image_name: str) -> ImageRecord:
        """A record made up from the saved image (category general, internal origin)."""
        image = self.get_pil(image_name)
        now = datetime.now(UTC)
        return ImageRecord(
            image_name=image_name, image_origin=ImageOrigin.internal, image_category=ImageCategory.general,
            width=image.width, height=image.height, is_intermediate=False, created_at=now, updated_at=now,
        )

    def get_metadata(self, image_name: str) -> dict[str, Any] | None:
        """The metadata the image was saved with."""
        metadata = self.metadata.get(image_name)
        return dict(metadata) if metadata is not None else None


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
    """Models by key: put the objects a node should get into :attr:`models`, and the local files that
    ``download_and_cache_model`` should return into :attr:`downloads` (source -> path)."""

    def __init__(self, models: Mapping[str, Any] | None = None, downloads: Mapping[str, Path] | None = None) -> None:
        self.models: dict[str, Any] = dict(models or {})
        self.downloads: dict[str, Path] = dict(downloads or {})

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
        self,
        name: str | None = None,
        base: str | None = None,
        type: str | None = None,  # noqa: A002 - the config field's name
        format: str | None = None,  # noqa: A002 - the config field's name
    ) -> list[Any]:
        """The given models whose attributes equal every filter given, sorted by name."""
        wanted = {k: v for k, v in {"name": name, "base": base, "type": type, "format": format}.items() if v}
        found = [m for m in self.models.values() if all(getattr(m, k, None) == v for k, v in wanted.items())]
        return sorted(found, key=lambda m: str(getattr(m, "name", "")))

    def download_and_cache_model(self, source: str, *, revision: str | None = None) -> Path:
        """The path given for ``source`` in :attr:`downloads` (nothing is downloaded)."""
        try:
            return self.downloads[source]
        except KeyError:
            raise ValueError(
                f"no download {source!r} in the fake context; add it to context.models.downloads"
            ) from None

    def load_local_model(self, model_path: Path | str, loader: Callable[[Path], Any]) -> AbstractContextManager[Any]:
        """``loader(model_path)``, held for the ``with`` block."""
        return _hold(loader(Path(model_path)))

    def load_remote_model(
        self, source: str, loader: Callable[[Path], Any], *, revision: str | None = None
    ) -> AbstractContextManager[Any]:
        """``loader`` on the path given for ``source`` in :attr:`downloads`."""
        return self.load_local_model(self.download_and_cache_model(source, revision=revision), loader)


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


def node_migrations_of(plugin: Any) -> list[NodeMigration]:
    """The migrations ``plugin`` (a plugin module or object) registers in its ``register_node_migrations`` hook."""
    hook: Callable[..., None] | None = getattr(plugin, "register_node_migrations", None)
    if hook is None:
        raise TypeError(f"{plugin!r} has no register_node_migrations hook")
    found: list[NodeMigration] = []

    def register(node_type: str, from_version: str, to_version: str, migrate: Any) -> None:
        found.append(NodeMigration(node_type, from_version, to_version, migrate))

    hook(register=register)
    return found


def migrate_node(plugin: Any, node: Mapping[str, Any], node_class: type[TNode]) -> TNode:
    """Upgrade ``node`` (a graph node's dict with its old ``version``) with ``plugin``'s migrations to the version
    ``node_class`` declares, the way the server does before validating a graph, and validate it as that class.

    Raises :class:`~invoke_sdk.node_migrations.NodeVersionError` where the server would refuse the node (newer than
    ``node_class``, no migration path, a migration that fails), and pydantic's ``ValidationError`` when the
    migrated dict is not a valid ``node_class``.
    """
    info = node_class.invocation_info()
    if info is None:
        raise TypeError(f"{node_class.__name__} is not decorated with @invocation")
    if node.get("type") != info.type:
        raise ValueError(f"the node's type {node.get('type')!r} is not {node_class.__name__}'s {info.type!r}")
    values = upgrade_node(node, info.version, node_migrations_of(plugin), node_id=str(node.get("id", "node")),
                          pack=f"{getattr(plugin, '__name__', type(plugin).__name__)}")
    return node_class.model_validate(values)
