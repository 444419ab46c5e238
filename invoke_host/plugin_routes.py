"""Which routes a plugin may add: none under the host's own paths, none over a route already taken.

The access-token middleware lets some paths through without a token (``invoke_host.security.PUBLIC_PATHS``:
the OpenAPI document under ``/schema``, the version), so a plugin route there would answer anyone. A plugin
route equal to a core route crashed Litestar at start-up, and one beside a core route could shadow it
(``GET /api/v1/queue/default/status`` wins over the core ``/api/v1/queue/{queue_id}/status`` for that queue).

So each core route reserves its *namespace*: its full path (the version router's prefix included, see
``invoke_host.api.router``) up to the first path parameter, at most three
segments (``/api/v1/queue``, ``/api/v2/models``, ``/api/v1/app``), and every public path is reserved with
everything under it. A plugin route is refused when any path it can match lies in a reserved namespace
(a path parameter matches any one segment, a ``:path`` parameter or an ASGI mount anything below it), or
when it overlaps a route another plugin already gave (same path pattern, a shared method). Routes are
judged as Litestar resolves them, so a router or controller is judged by every route it holds.

Handler options cannot weaken the checks: both middlewares are plain ASGI callables applied to every
route by the app, and read none of Litestar's ``opt`` / ``exclude`` / ``security`` settings.
"""

from __future__ import annotations

import copy
import pathlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from invoke_host.security import PUBLIC_PATHS

__all__ = ["NAMESPACE_DEPTH", "Route", "RouteTable", "resolve_routes"]

NAMESPACE_DEPTH = 3
"""Segments of a core route's static prefix that its namespace keeps (``/api/v1/<area>``)."""

_PARAM = re.compile(r"^\{[^}]*\}$")


@dataclass(frozen=True)
class Route:
    """One path of a handler as Litestar will serve it, with its methods (``WEBSOCKET`` / ``ASGI`` for those)."""

    path: str
    methods: frozenset[str]
    wildcard: bool = False
    """Matches everything below its last segment (a ``:path`` parameter, or an ASGI mount)."""

    def label(self) -> str:
        return f"{','.join(sorted(self.methods))} {self.path}"

    @property
    def segments(self) -> list[str]:
        return [s for s in self.path.split("/") if s]

    @property
    def pattern(self) -> str:
        """The path with parameter names dropped: ``/a/{x:int}`` and ``/a/{y:int}`` are one route."""
        return "/" + "/".join("{}" if _PARAM.match(s) else s for s in self.segments)


def resolve_routes(handler: Any) -> list[Route]:
    """The routes ``handler`` (a Litestar route handler, controller class or router) would add to an app.

    Raises ``ValueError`` for something Litestar cannot register.
    """
    from litestar import Router
    from litestar.handlers import ASGIRouteHandler, HTTPRouteHandler, WebsocketRouteHandler
    from litestar.routes import ASGIRoute, HTTPRoute, WebSocketRoute

    routes: list[Any]
    if isinstance(handler, Router):
        # A router holds its routes with their full paths already: registered under "/" it would be deep-copied and
        # every route built again (the core routers, judged at every start, cost 11 ms that way).
        routes = handler.routes
    else:
        # Registering sets the handler's owner; a copy keeps the plugin's object as it was for the real app.
        single = isinstance(handler, HTTPRouteHandler | WebsocketRouteHandler | ASGIRouteHandler)
        probe = copy.copy(handler) if single else handler
        try:
            routes = Router(path="/", route_handlers=[probe]).routes
        except Exception as exc:
            raise ValueError(f"{handler!r} is not a Litestar route handler, controller or router: {exc}") from exc
    out: list[Route] = []
    for route in routes:
        if isinstance(route, HTTPRoute):
            methods = frozenset(route.methods) - {"OPTIONS"}  # Litestar adds OPTIONS to every path itself
            wildcard = any(p.type is pathlib.Path for p in route.path_parameters.values())
            out.append(Route(route.path, methods, wildcard))
        elif isinstance(route, WebSocketRoute):
            out.append(Route(route.path, frozenset({"WEBSOCKET"}), False))
        elif isinstance(route, ASGIRoute):
            mount = bool(getattr(route.route_handler, "is_mount", False))
            out.append(Route(route.path, frozenset({"ASGI"}), mount))
    return out


def _static_prefix(route: Route) -> list[str]:
    prefix = []
    for segment in route.segments:
        if _PARAM.match(segment):
            break
        prefix.append(segment)
    return prefix


def _reaches(route: Route, namespace: list[str]) -> bool:
    """Whether ``route`` can match ``namespace`` itself or a path under it."""
    segments = route.segments
    for i, wanted in enumerate(namespace):
        if i >= len(segments):
            # Shorter than the namespace: only a wildcard end (a mount at "/", say) reaches further down.
            return route.wildcard
        have = segments[i]
        if _PARAM.match(have):
            if route.wildcard and i == len(segments) - 1:
                return True
            continue
        if have != wanted:
            return False
    return True


def _overlap(a: Route, b: Route) -> bool:
    if a.pattern != b.pattern:
        return False
    return bool(a.methods & b.methods) or "ASGI" in a.methods or "ASGI" in b.methods


@dataclass
class RouteTable:
    """The routes taken so far: the host's own, then each plugin route accepted, in load order."""

    core: Sequence[Route]
    namespaces: dict[str, str] = field(default_factory=dict)
    """Reserved namespace path -> why (the core route or public path that reserves it)."""
    taken: list[tuple[Route, str]] = field(default_factory=list)
    """Plugin routes accepted, with the name of the plugin that gave each."""

    @classmethod
    def for_core(cls, core_handlers: Iterable[Any]) -> RouteTable:
        """A table with the namespaces of ``core_handlers`` (the app's own routers, handlers or controllers, each
        judged by the full paths it serves) and the public paths reserved."""
        core: list[Route] = []
        for handler in core_handlers:
            core.extend(resolve_routes(handler))
        namespaces: dict[str, str] = {}
        for path in PUBLIC_PATHS:
            namespaces["/" + "/".join(s for s in path.split("/") if s)] = (
                f"{path} and everything under it answer without the access token"
            )
        for route in core:
            prefix = _static_prefix(route)[:NAMESPACE_DEPTH]
            # A core route at "/" reserves only itself (the overlap check), not every path there is.
            if prefix:
                namespaces.setdefault("/" + "/".join(prefix), f"the host's routes live there ({route.label()} ...)")
        # Shortest first, so a catch-all is told about /schema rather than about some deep core path.
        return cls(core=core, namespaces=dict(sorted(namespaces.items(), key=lambda kv: (len(kv[0]), kv[0]))))

    def refusal(self, route: Route) -> tuple[str, str | None] | None:
        """None if ``route`` may be added; else why not, and the plugin whose route it overlaps (then the reason is
        that route's label) or None (the host's paths)."""
        for core in self.core:
            if _overlap(route, core):
                return f"it is the host's own route {core.label()}", None
        for path, why in self.namespaces.items():
            if _reaches(route, [s for s in path.split("/") if s]):
                return f"paths under {path} are reserved for the host: {why}", None
        for other, plugin in self.taken:
            if _overlap(route, other):
                return other.label(), plugin
        return None

    def accept(self, routes: Iterable[Route], plugin: str) -> None:
        """Record ``routes`` as taken by the plugin named ``plugin``."""
        self.taken.extend((route, plugin) for route in routes)
