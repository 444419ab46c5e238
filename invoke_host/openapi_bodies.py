"""Request bodies that handlers read raw and validate themselves, described for the OpenAPI components.

Such a handler names its component with ``body_schema_operation``; the model is listed here so its
schema (and the models it refers to) lands in ``#/components/schemas``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from invoke_host.queue import EnqueueBatchBody

__all__ = ["BODY_MODELS", "body_components"]

BODY_MODELS: tuple[type[BaseModel], ...] = (EnqueueBatchBody,)


@cache
def body_components() -> dict[str, Any]:
    """Component schemas of every model in :data:`BODY_MODELS`."""
    _, top = models_json_schema([(m, "validation") for m in BODY_MODELS], ref_template="#/components/schemas/{model}")
    return dict(top.get("$defs", {}))
