"""Storage errors that are not the server's fault answer with why, never 500: a database that has gone away 503
(the request may simply be tried again), a value the database cannot hold 400."""

import logging
from typing import Any

from invoke_sdk.storage_base import StorageUnavailableError, StorageValueError
from litestar import Request, Response
from litestar.enums import MediaType

__all__ = ["storage_unavailable_handler", "storage_value_handler"]

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


def storage_value_handler(request: Request[Any, Any, Any], exc: StorageValueError) -> Response[Any]:
    """Answer 400 with what the database refused (nothing was stored)."""
    return Response(
        content={"status_code": 400, "detail": f"{exc}; change that value and send the request again"},
        status_code=400,
        media_type=MediaType.JSON,
    )
