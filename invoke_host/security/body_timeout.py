"""A stall timeout on request bodies: a client that stops sending halfway is answered 408 and cut off.

Uvicorn waits for the rest of a body for as long as the connection stays open, and the route
waits with it, holding its memory and a connection slot. Each wait for the next piece of a body
here is bounded instead; once the body is complete, later ``receive`` calls (a streaming response
listening for the client to hang up) are passed through untimed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from litestar.exceptions import HTTPException

from invoke_host.security._asgi import ASGIApp, Middleware, Receive, Scope, Send

__all__ = ["RequestBodyTimeoutError", "request_body_timeout_middleware"]

logger = logging.getLogger("invoke_host.security")


class RequestBodyTimeoutError(HTTPException):
    """The client sent no part of its request body for too long (408; the connection is closed)."""

    status_code = 408


def request_body_timeout_middleware(timeout_s: float) -> Middleware:
    """Give up on a request body when no piece of it arrives for ``timeout_s`` seconds."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            complete = False

            async def timed_receive() -> Any:
                nonlocal complete
                if complete:
                    return await receive()
                try:
                    message = await asyncio.wait_for(receive(), timeout_s)
                except TimeoutError:
                    logger.warning(
                        "%s %s: the client sent no part of the request body for %g s; answered 408 and closed "
                        "the connection",
                        scope.get("method"),
                        scope.get("path"),
                        timeout_s,
                    )
                    raise RequestBodyTimeoutError(
                        detail=f"no part of the request body arrived for {timeout_s:g} seconds; this server waits at "
                        f"most request_body_timeout_s (INVOKE_HOST_REQUEST_BODY_TIMEOUT_S={timeout_s:g})",
                        headers={"connection": "close"},
                    ) from None
                if message["type"] != "http.request" or not message.get("more_body", False):
                    complete = True
                return message

            await app(scope, timed_receive, send)

        return middleware

    return wrap
