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

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from litestar import Router
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler
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

__all__ = ["VERSIONED_ROUTES", "VersionRouter", "api_routers"]

VERSIONED_ROUTES: Mapping[str, Sequence[ControllerRouterHandler]] = {
    API_V1: (get_version, list_plugins, list_nodes, validate_graph_route, QueueController, ImagesController,
             get_invocation_cache_status, clear_invocation_cache, retry_items_by_id, WorkflowsController),
    API_V2: (ModelsController,),
}
"""Each version's prefix and the handlers and controllers under it, in the order they are registered."""


class VersionRouter(Router):
    """A version's router, built for one app: the app registers it as it is, not a deep copy of it.

    Litestar deep-copies every router an app registers (about a sixth of ``create_app``) so that what the app
    resolves and caches on the handlers (dependencies, signature and kwargs models, response handlers built at the
    first request) stays apart from the objects it was given, which may be module-level or registered elsewhere too.
    Nothing here is shared that way: :func:`api_routers` builds new routers for each app, a controller's handlers
    are deep copies made for its router (``Controller.get_route_handlers``), and each handler function is
    deep-copied into its router below. ``tests/test_api_routes.py`` fails if two apps' handlers share any mutable
    state.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> VersionRouter:
        if self.owner is not None:
            raise RuntimeError(f"the {self.path} router already serves an app: build new ones with api_routers()")
        return self


def _own_copy(handler: ControllerRouterHandler) -> ControllerRouterHandler:
    """A handler function's deep copy (a controller class as it is: Litestar copies its handlers per router)."""
    if isinstance(handler, BaseRouteHandler):
        # Its owner is not copied: the router it is registered on sets the copy's.
        return copy.deepcopy(handler, {id(handler.owner): None})
    return handler


def api_routers(dependencies: Mapping[str, Provide] | None = None) -> list[Router]:
    """One router per API version, each with ``dependencies`` (``invoke_host.api.dependencies.host_dependencies``).

    The app serves routers made with its host's dependencies. Without them the routers can still say which paths
    the host holds, which is all the plugin-route checks need, before any host exists; they cannot serve. Each call
    builds new routers, for one app (:class:`VersionRouter`).
    """
    return [
        VersionRouter(path=prefix, route_handlers=[_own_copy(h) for h in handlers], dependencies=dependencies)
        for prefix, handlers in VERSIONED_ROUTES.items()
    ]
