"""pytest plugin for node-pack authors: an in-process host that runs graphs through the real engine.

Installed with the host (``pytest11`` entry point), so a pack's tests can use::

    def test_my_node(invoke_host):
        result = invoke_host.run({"nodes": {"n": {"type": "my_node", "a": 1}}, "edges": []})
        assert result.output("n").value == 2

By default the host loads every installed plugin (entry points), so an installed pack is found the
way a server finds it. To load only some plugins, override the ``invoke_host_plugins`` fixture in a
``conftest.py`` and return ``[("name", module), ...]``. Imports stay inside the fixtures: this module
is imported by every pytest run in an environment that has the host installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from invoke_host.engine import EngineEvent, OutputCache, SessionResult
    from invoke_host.graph import ValidatedGraph
    from invoke_host.host import Host

__all__ = ["InProcessHost", "invoke_host", "invoke_host_plugins"]


@dataclass
class InProcessHost:
    """A host built for one test, with a data root under the test's ``tmp_path``."""

    host: Host
    cache: OutputCache

    @property
    def registry(self) -> Any:
        return self.host.registry

    def validate(self, graph: Any) -> ValidatedGraph:
        """Every problem of ``graph`` (dict, JSON text or bytes)."""
        from invoke_host.graph import validate_graph

        return validate_graph(self.host.registry, graph)

    def run(self, graph: Any, **kwargs: Any) -> SessionResult:
        """Validate and run ``graph``; events are collected into :attr:`events`."""
        from invoke_host.engine import run_graph

        events: list[EngineEvent] = []
        self.events = events
        return run_graph(self.host, graph, cache=self.cache, on_event=events.append, **kwargs)


@pytest.fixture
def invoke_host_plugins() -> list[Any] | None:
    """Plugins for the ``invoke_host`` fixture: None loads installed entry points; a list loads only those."""
    return None


@pytest.fixture
def invoke_host(invoke_host_plugins: list[Any] | None, tmp_path: Path) -> InProcessHost:
    """An in-process host with the plugins of ``invoke_host_plugins``, its data root in ``tmp_path``."""
    from invoke_host.config import HostConfig
    from invoke_host.engine import OutputCache
    from invoke_host.host import build_host

    config = HostConfig(root=tmp_path / "invoke-root")
    if invoke_host_plugins is None:
        host = build_host(config, entry_points=True)
    else:
        host = build_host(config, invoke_host_plugins, entry_points=False)
    return InProcessHost(host=host, cache=OutputCache())
