"""A database that has gone away answers 503 with why, never 500: the request may simply be tried again."""

from __future__ import annotations

import logging
from typing import Any

from invoke_sdk.storage_base import StorageUnavailableError
from litestar import Request, Response
from litestar.enums import MediaType

__all__ = ["storage_unavailable_handler"]

logger = logging.getLogger("invoke_host.api")


def storage_unavailable_handler(request: Request[Any, Any, Any], exc: StorageUnavailableError) -> Response[Any]:
    """Answer 503 with the backend's message (which names the database with its password masked)."""
    logger.warning("%s %s: %s; answered 503", request.method, request.url.path, exc)
    return Response(
        content={"status_code": 503, "detail": str(exc)},
        status_code=503,
        media_type=MediaType.JSON,
        headers={"Retry-After": "5"},
    )
