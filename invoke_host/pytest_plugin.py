"""pytest plugin for node-pack authors: an in-process host that runs graphs through the real engine.

Installed with the host (``pytest11`` entry point), so a pack's tests can use::

    def test_my_node(invoke_host):
        result = invoke_host.run({"nodes": {"n": {"type": "my_node", "a": 1}}, "edges": []})
        assert result.output("n").value == 2

The fixture's host has its services started on a data root under the test's ``tmp_path``: nodes can save and
read images (``context.images``) and load installed models (``context.models``); :meth:`InProcessHost.add_image`
and :meth:`InProcessHost.install_model` put the inputs in place. A session that fails raises
:class:`SessionFailedError` with the failing node's own error and traceback (``run(graph, check=False)`` returns
the failed result instead).

By default the host loads every installed plugin (entry points), so an installed pack is found the
way a server finds it. To load only some plugins, override the ``invoke_host_plugins`` fixture in a
``conftest.py`` and return ``[("name", module), ...]`` (images and models need a storage backend among them,
``invoke_sqlite_storage.plugin`` and ``invoke_local_file_storage.plugin``). Imports stay inside the fixtures: this
module is imported by every pytest run in an environment that has the host installed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from invoke_sdk.fields import ImageField, ModelIdentifierField

    from invoke_host.engine import EngineEvent, OutputCache, SessionResult
    from invoke_host.graph import ValidatedGraph
    from invoke_host.host import Host

__all__ = ["InProcessHost", "SessionFailedError", "invoke_host", "invoke_host_plugins"]

T = TypeVar("T")


class SessionFailedError(AssertionError):
    """A graph run by :meth:`InProcessHost.run` did not complete: the message holds each failing node's id, type,
    error and traceback, as the node raised it. ``result`` is the session's result."""

    def __init__(self, result: SessionResult) -> None:
        self.result = result
        nodes = result.state.graph.nodes
        parts = [f"the session {result.status}"]
        for error in result.errors:
            node = nodes.get(error.source_node_id)
            kind = f" ({node.type})" if node is not None else ""
            parts.append(f"node {error.source_node_id!r}{kind} failed: {error.error_type}: {error.message}\n\n"
                         f"{error.traceback.rstrip()}")
        super().__init__("\n\n".join(parts))


@dataclass
class InProcessHost:
    """A host built for one test, its services started on an event loop of their own, its data root under the
    test's ``tmp_path``."""

    host: Host
    cache: OutputCache
    loop: asyncio.AbstractEventLoop = field(repr=False)
    """The loop the host's services run on, in a thread of its own: node code reaches it from any thread."""
    events: list[EngineEvent] = field(default_factory=list)
    """What the last :meth:`run` reported (node started, progress, completed, failed; session finished)."""

    @property
    def registry(self) -> Any:
        return self.host.registry

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the services' loop and return its result (to use a service from a test)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def validate(self, graph: Any) -> ValidatedGraph:
        """Every problem of ``graph`` (dict, JSON text or bytes)."""
        from invoke_host.graph import validate_graph

        return validate_graph(self.host.registry, graph)

    def run(self, graph: Any, *, check: bool = True, **kwargs: Any) -> SessionResult:
        """Validate and run ``graph`` (dict, JSON text or bytes); events are collected into :attr:`events`.

        Raises ``GraphValidationError`` for an invalid graph and, unless ``check`` is false,
        :class:`SessionFailedError` for a session that did not complete.
        """
        from invoke_host.engine import run_graph

        self.events = []
        result = run_graph(self.host, graph, cache=self.cache, on_event=self.events.append, **kwargs)
        if check and result.status != "completed":
            raise SessionFailedError(result)
        return result

    def _images(self) -> Any:
        if self.host.images is None:
            from invoke_host.host import missing_storage_message

            raise RuntimeError(f"the test host has no image store: {missing_storage_message(self.host)}")
        return self.host.images

    def add_image(self, image: Any) -> ImageField:
        """Save a PIL image into the host's image store (as an upload would); the field to give a node."""
        from invoke_sdk.fields import ImageField

        record = self.call(self._images().save(image, image_origin="external"))
        return ImageField(image_name=record.image_name)

    def get_image(self, image: ImageField | str) -> Any:
        """A stored image (a field, or its name) as a PIL image."""
        name = image if isinstance(image, str) else image.image_name
        return self.call(self._images().get_pil(name))

    def install_model(self, path: Path | str, **config: Any) -> ModelIdentifierField:
        """Install the model at ``path`` (a file or folder) as a server would; ``config`` overrides what probing
        finds, and gives ``type``, ``format`` and ``base`` for a model no prober knows. The field to give a node.
        """
        from invoke_sdk.fields import ModelIdentifierField

        models = self.host.models

        async def install() -> Any:
            job = models.installer.import_model(str(path), config=config)
            job = await models.installer.wait(job.id)
            if job.status.value != "completed":
                raise RuntimeError(f"installing {path} {job.status.value}: {job.error or ''}")
            return await models.store.get((job.config_out or {})["key"])

        installed = self.call(install())
        return ModelIdentifierField(key=installed.key, hash=installed.hash, name=installed.name,
                                    base=installed.base.value, type=installed.type.value)


@pytest.fixture
def invoke_host_plugins() -> list[Any] | None:
    """Plugins for the ``invoke_host`` fixture: None loads installed entry points; a list loads only those."""
    return None


@pytest.fixture
def invoke_host(invoke_host_plugins: list[Any] | None, tmp_path: Path) -> Iterator[InProcessHost]:
    """An in-process host with the plugins of ``invoke_host_plugins``, its data root in ``tmp_path``, its services
    (images, models) started for the test and stopped after it."""
    from invoke_host.config import HostConfig
    from invoke_host.engine import OutputCache
    from invoke_host.host import NodeShape, build_host

    config = HostConfig(root=tmp_path / "invoke-root")
    if invoke_host_plugins is None:
        host = build_host(config, entry_points=True, shape=NodeShape.SERVICES)
    else:
        host = build_host(config, invoke_host_plugins, entry_points=False, shape=NodeShape.SERVICES)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="invoke-host-services", daemon=True)
    thread.start()
    in_process = InProcessHost(host=host, cache=OutputCache(), loop=loop)
    try:
        in_process.call(host.start())
        yield in_process
    finally:
        try:
            in_process.call(host.stop())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
            loop.close()
