"""The OpenAPI document: Litestar's, plus the registry's models (:mod:`invoke_host.openapi_components`).

The unions exist only after plugins registered, so their schemas are merged into the
components that Litestar generated, with an explicit discriminator mapping for each union. Then the bodies
handlers read and write raw get their real schemas (:mod:`invoke_host.openapi_bodies`), every operation its
error statuses (:mod:`invoke_host.openapi_errors`), and the live-events socket its messages
(:mod:`invoke_host.openapi_websocket`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from litestar import Litestar, Request
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import OpenAPIMediaType, Operation, Reference, RequestBody
from pydantic import BaseModel

from invoke_host.graph.schema import graph_schema_components
from invoke_host.openapi_bodies import body_components, type_bodies
from invoke_host.openapi_closed_models import close_components, handler_body_models
from invoke_host.openapi_components import registry_components
from invoke_host.openapi_errors import ERROR_COMPONENTS, declare_errors
from invoke_host.openapi_websocket import WEBSOCKET_PATH, websocket_components, websocket_entry
from invoke_host.registry import FrozenRegistry

__all__ = ["RegistryJsonRenderPlugin", "body_schema_operation", "openapi_document"]


def merge_components(
    schema: dict[str, Any], registry: FrozenRegistry, body_models: Iterable[type[BaseModel]] = ()
) -> dict[str, Any]:
    """A copy of Litestar's document with the registry's schemas added to its components.

    ``body_models`` are the models handlers read as bodies (:func:`handler_body_models`): those that refuse unknown
    keys are marked closed.
    """
    merged = copy.copy(schema)
    components = dict(merged.get("components") or {})
    schemas = {name: dict(value) for name, value in (components.get("schemas") or {}).items()}
    close_components(schemas, body_models)
    schemas.update(registry_components(registry).components)
    schemas.update(graph_schema_components())
    schemas.update(body_components())
    schemas.update(ERROR_COMPONENTS)
    # Litestar's paths are copied before they are changed: its document is its own.
    paths = copy.deepcopy(merged.get("paths") or {})
    type_bodies(schemas, paths)
    declare_errors(paths)
    if any(WEBSOCKET_PATH in getattr(route, "paths", ()) for route in registry.routes):
        schemas.update(websocket_components(schemas["AnyEventMessage"]["discriminator"]["mapping"]))
        merged["x-websockets"] = websocket_entry()
    components["schemas"] = schemas
    merged["components"] = components
    merged["paths"] = paths
    return merged


def openapi_document(app: Litestar) -> dict[str, Any]:
    """The complete OpenAPI document of an app made by ``create_app``."""
    registry: FrozenRegistry = app.state.host.registry
    return merge_components(app.openapi_schema.to_schema(), registry, handler_body_models(app))


class RegistryJsonRenderPlugin(JsonRenderPlugin):
    """Serves ``/schema/openapi.json`` with the registry's components merged in, built once."""

    def __init__(self, registry: FrozenRegistry) -> None:
        super().__init__()
        self._registry = registry
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            document = merge_components(openapi_schema, self._registry, handler_body_models(request.app))
            self._rendered = self.render_json(request, document)
        return self._rendered


@dataclass
class _BodyOperation(Operation):
    """An operation whose request body is a component named by its subclass (see :func:`body_schema_operation`)."""

    # Class attributes, not dataclass fields: a subclass per body sets them, and Operation's fields stay the document's.
    _component: ClassVar[str]
    _description: ClassVar[str]

    def __post_init__(self) -> None:
        ref = Reference(ref=f"#/components/schemas/{self._component}")
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=ref)},
            description=self._description,
            required=True,
        )


def body_schema_operation(component: str, description: str) -> type[Operation]:
    """An Operation class whose request body is the named component (a union Litestar cannot describe).

    A plain subclass of one dataclass: a new dataclass per call compiled its six methods each time (about 0.9 ms,
    five calls at every start; docs/benchmarks.md, start-up, h-start5), and Operation's generated ``__init__`` already
    calls ``__post_init__``.
    """
    return type("_BodyOperation", (_BodyOperation,), {"_component": component, "_description": description})
