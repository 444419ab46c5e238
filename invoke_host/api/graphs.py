"""``POST /api/v1/graphs/validate``: every problem of a graph, each with its node id and field."""

from typing import Any

import msgspec
from litestar import Request, post
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_200_OK

from invoke_host.api.injected import Injected
from invoke_host.config import HostConfig
from invoke_host.graph import ValidatedGraph, refusal_message, validate_graph
from invoke_host.limits import Limits
from invoke_host.openapi_document import body_schema_operation
from invoke_host.registry import FrozenRegistry

__all__ = ["GraphValidationResponse", "GraphValidator", "ValidationProblem", "validate_graph_route"]


class ValidationProblem(msgspec.Struct):
    node_id: str | None
    field: str | None
    message: str


class GraphValidationResponse(msgspec.Struct):
    valid: bool
    errors: list[ValidationProblem]


class GraphValidator:
    """Validates graphs against one host's node types and limits.

    All the route needs, as one dependency: Litestar resolves two independent dependencies (the registry and the
    config) in a task group, which tripled the route's cost per request.
    """

    def __init__(self, registry: FrozenRegistry, config: HostConfig) -> None:
        self._registry = registry
        self._config = config

    def validate(self, body: bytes) -> ValidatedGraph:
        return validate_graph(self._registry, body, limits=Limits.from_config(self._config))


@post(
    "/graphs/validate",
    tags=["graphs"],
    summary="Validate a graph against the installed node types",
    description=(
        "200 when the graph can run; 422 with every problem found (each with its node id and field, in "
        "`extra.errors`), exactly as `enqueue_batch` would refuse it."
    ),
    status_code=HTTP_200_OK,
    operation_class=body_schema_operation("Graph", "The graph to validate"),
)
async def validate_graph_route(
    request: Request[Any, Any, Any], graph_validator: Injected[GraphValidator]
) -> GraphValidationResponse:
    # Raw bytes, validated by us: the node union cannot be a Litestar-typed body (see STYLE.md).
    body = await request.body()
    if not body.strip():
        raise ValidationException("send the graph to validate as the JSON body")
    result = graph_validator.validate(body)
    if not result.valid:
        # The answer of a graph the document rules out is a 4xx, like enqueue's: a client generated from the
        # document treats it as the refusal it is, with the same problem list to show.
        problems = [e.to_dict() for e in result.errors]
        raise HTTPException(status_code=422, detail=refusal_message(result.errors), extra={"errors": problems})
    return GraphValidationResponse(valid=True, errors=[])
