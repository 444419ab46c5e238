"""The core API: one Litestar router per version, each holding its handlers under that version's prefix.

Handlers declare paths relative to their router (``/queue/{queue_id:str}``, ``/models``); the prefix is
:data:`~invoke_host.api_versions.API_V1` or ``API_V2``, written once. A new version is one more entry in
:data:`VERSIONED_ROUTES`, beside the others. Plugin routes are not in these routers: they keep the full paths their
plugins gave, and ``invoke_host.plugin_routes`` refuses those that reach into the paths these routers serve.

The handler modules (and ``invoke_host.api.dependencies``, whose providers Litestar inspects too) do not use
``from __future__ import annotations``: Litestar resolves a handler's annotations at every registration, so string
annotations were compiled and evaluated anew for each app (a fifth of ``create_app``); evaluated once at import, they
are only looked up. ``tests/test_api_routes.py`` fails if a core handler or provider holds a string annotation again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from litestar import Router
from litestar.di import Provide
from litestar.types import ControllerRouterHandler

from invoke_host.api.app_info import get_version
from invoke_host.api.graphs import validate_graph_route
from invoke_host.api.images import ImagesController
from invoke_host.api.invocation_cache import clear_invocation_cache, get_invocation_cache_status
from invoke_host.api.models import ModelsController
from invoke_host.api.nodes import list_nodes
from invoke_host.api.plugins import list_plugins
from invoke_host.api.queue import QueueController
from invoke_host.api.queue_retry import retry_items_by_id
from invoke_host.api.workflows import WorkflowsController
from invoke_host.api_versions import API_V1, API_V2

__all__ = ["VERSIONED_ROUTES", "api_routers"]

VERSIONED_ROUTES: Mapping[str, Sequence[ControllerRouterHandler]] = {
    API_V1: (get_version, list_plugins, list_nodes, validate_graph_route, QueueController, ImagesController,
             get_invocation_cache_status, clear_invocation_cache, retry_items_by_id, WorkflowsController),
    API_V2: (ModelsController,),
}
"""Each version's prefix and the handlers and controllers under it, in the order they are registered."""


def api_routers(dependencies: Mapping[str, Provide] | None = None) -> list[Router]:
    """One router per API version, each with ``dependencies`` (``invoke_host.api.dependencies.host_dependencies``).

    The app serves routers made with its host's dependencies. Without them the routers can still say which paths
    the host holds, which is all the plugin-route checks need, before any host exists; they cannot serve.
    """
    return [
        Router(path=prefix, route_handlers=list(handlers), dependencies=dependencies)
        for prefix, handlers in VERSIONED_ROUTES.items()
    ]
