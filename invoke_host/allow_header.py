"""The ``Allow`` header of Litestar's automatic ``OPTIONS`` answers lists every method of the path.

Litestar 2 builds each path's ``OPTIONS`` handler when the first of its handlers is registered, and the handler
reads the methods of that first route object; handlers merged in later (``GET`` and ``PATCH`` beside ``DELETE`` on
one path) never reach it, so ``OPTIONS /api/v1/images/i/{name}`` answered ``Allow: DELETE, OPTIONS``
(litestar-org/litestar#4169, fixed only in Litestar 3). This hook rewrites the header from the app's final routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute

__all__ = ["allow_header_hook"]


def _allowed_methods(app: Litestar) -> dict[int, bytes]:
    """Each route's OPTIONS handler (by id) -> the Allow value of all the route's methods."""
    allowed: dict[int, bytes] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            value = ", ".join(sorted(route.methods)).encode()
            for handler in route.route_handlers:
                if "OPTIONS" in handler.http_methods:
                    allowed[id(handler)] = value
    return allowed


def allow_header_hook() -> Callable[[Any, Any], Awaitable[None]]:
    """A ``before_send`` hook that corrects ``Allow`` on the answers of ``OPTIONS`` handlers."""
    table: dict[int, bytes] | None = None

    async def hook(message: Any, scope: Any) -> None:
        nonlocal table
        if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
            return
        if table is None:
            table = _allowed_methods(scope["app"])
        value = table.get(id(scope.get("route_handler")))
        if value is None:
            return
        kept = [(name, raw) for name, raw in message.get("headers", ()) if name.lower() != b"allow"]
        message["headers"] = [*kept, (b"allow", value)]

    return hook
