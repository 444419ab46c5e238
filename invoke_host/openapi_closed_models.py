"""Request models that refuse unknown keys say so in the document: ``additionalProperties: false``.

Litestar describes a pydantic body without its ``extra="forbid"``, so a document built from it promises to accept
keys the handler refuses with 400, and a client generated from it (or schemathesis' positive data) sends them. Every
model a handler reads as its ``data``, and every model nested in one, is found from the app's handlers, so a new
route's body is covered without being listed anywhere.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any, get_args

from litestar import Litestar
from pydantic import BaseModel

__all__ = ["close_components", "handler_body_models"]


def _collect(annotation: Any, found: set[type[BaseModel]]) -> None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        if annotation in found:
            return
        found.add(annotation)
        for field in annotation.model_fields.values():
            _collect(field.annotation, found)
        return
    for argument in get_args(annotation):
        _collect(argument, found)


def handler_body_models(app: Litestar) -> set[type[BaseModel]]:
    """Every pydantic model the app's handlers take as their ``data`` body, with the models nested in them."""
    found: set[type[BaseModel]] = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is not None:
                _collect(data.annotation, found)
    return found


def close_components(schemas: dict[str, Any], models: Iterable[type[BaseModel]]) -> None:
    """Mark the component of each model that forbids extra keys as closed (in place)."""
    closed = {model.__name__ for model in models if model.model_config.get("extra") == "forbid"}
    for schema in schemas.values():
        if schema.get("title") in closed and schema.get("type") == "object":
            schema["additionalProperties"] = False
