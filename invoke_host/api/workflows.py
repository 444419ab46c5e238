"""``/api/v1/workflows``: the workflow library (InvokeAI's paths) and ``POST .../i/{id}/enqueue`` to run one by id."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from invoke_sdk.session_queue import EnqueueResult
from invoke_sdk.storage import StorageError
from invoke_sdk.storage_base import StorageUnavailableError, StorageValueError
from invoke_sdk.workflows import WorkflowOrder
from litestar import Controller, Request, delete, get, patch, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery, Parameter, QueryParameter
from pydantic import BaseModel, ValidationError

from invoke_host.api.injected import Injected
from invoke_host.openapi_document import body_schema_operation
from invoke_host.workflows import (
    WorkflowEnqueueBody,
    WorkflowError,
    WorkflowIn,
    WorkflowLibrary,
    WorkflowListPage,
    WorkflowUpdate,
    WorkflowView,
)

__all__ = ["WorkflowsController"]

_MAX_PAGE = 2**31


@asynccontextmanager
async def _answers(*, storing: bool = False) -> AsyncIterator[None]:
    """A library refusal as its HTTP answer; with ``storing``, a store's refusal of a write as 409 (an unavailable
    store or a value it cannot hold keep their 503 / 400 from api.storage_errors)."""
    try:
        yield
    except WorkflowError as exc:
        raise HTTPException(status_code=exc.status_code, detail=exc.message,
                            extra={"errors": exc.errors} if exc.errors else None) from None
    except (StorageUnavailableError, StorageValueError):
        raise
    except StorageError as exc:
        if not storing:
            raise
        raise HTTPException(status_code=409, detail=str(exc)) from None


async def _body(request: Request[Any, Any, Any], model: type[BaseModel]) -> Any:
    """The body validated as ``model``: 400 for bad JSON, 422 naming the first bad field."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [{"loc": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
                  for e in exc.errors(include_url=False)[:20]]
        if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False)):
            raise HTTPException(status_code=400, detail=f"the request body is not valid JSON: {errors[0]['message']}",
                                extra={"errors": errors}) from None
        raise HTTPException(status_code=422, detail=f"the body is invalid at {errors[0]['loc']}: "
                            f"{errors[0]['message']}", extra={"errors": errors}) from None


class WorkflowsController(Controller):
    path = "/workflows"
    tags = ["workflows"]

    @post(
        "/",
        status_code=200,
        summary="Save a workflow: its graph, workflow JSON, name, description and tags",
        operation_class=body_schema_operation("WorkflowIn", "The workflow to save"),
    )
    async def create_workflow(
        self, request: Request[Any, Any, Any], workflows: Injected[WorkflowLibrary]
    ) -> WorkflowView:
        # Read raw and validated here, so a bad body answers 422 with the field it is about.
        body: WorkflowIn = await _body(request, WorkflowIn)
        async with _answers(storing=True):
            return await workflows.create(body)

    @get("/", summary="A page of the library: saved workflows (filtered, in order), then packs' read-only ones")
    async def list_workflows(
        self,
        workflows: Injected[WorkflowLibrary],
        page: Annotated[int, Parameter(ge=0, le=_MAX_PAGE, description="The page, from 0")] = 0,
        per_page: Annotated[
            int | None, Parameter(ge=1, description="Workflows per page (default 100; at most max_workflow_page_size)")
        ] = None,
        search: Annotated[
            str | None, QueryParameter(name="query", max_length=200, description="Text in the name or description")
        ] = None,
        tags: Annotated[list[str] | None, Parameter(description="Listed if it has any of these tags")] = None,
        category: Annotated[
            Literal["user", "pack"] | None, Parameter(description="Only saved ('user') or packs' ('pack') workflows")
        ] = None,
        order_by: FromQuery[WorkflowOrder] = "updated_at",
        direction: FromQuery[Literal["ASC", "DESC"]] = "DESC",
    ) -> WorkflowListPage:
        async with _answers():
            return await workflows.list(page=page, per_page=per_page, query=search, tags=tags or [], category=category,
                                        order_by=order_by, direction=direction)

    @get("/i/{workflow_id:str}", summary="One workflow with its graph and workflow JSON")
    async def get_workflow(self, workflows: Injected[WorkflowLibrary], workflow_id: FromPath[str]) -> WorkflowView:
        async with _answers():
            return await workflows.get(workflow_id)

    @patch(
        "/i/{workflow_id:str}",
        summary="Change a saved workflow (the fields given); packs' are read-only",
        operation_class=body_schema_operation("WorkflowUpdate", "The fields to change"),
    )
    async def update_workflow(
        self, request: Request[Any, Any, Any], workflows: Injected[WorkflowLibrary], workflow_id: FromPath[str]
    ) -> WorkflowView:
        body: WorkflowUpdate = await _body(request, WorkflowUpdate)
        async with _answers(storing=True):
            return await workflows.update(workflow_id, body)

    @delete("/i/{workflow_id:str}", status_code=204, summary="Delete a saved workflow; packs' are read-only")
    async def delete_workflow(self, workflows: Injected[WorkflowLibrary], workflow_id: FromPath[str]) -> None:
        async with _answers():
            await workflows.delete(workflow_id)

    @post(
        "/i/{workflow_id:str}/enqueue",
        status_code=201,
        summary="Run a workflow by id: values for its fields (or batch data) written in, enqueued as a batch",
        operation_class=body_schema_operation("WorkflowEnqueueBody", "The queue, field values or data, and options"),
    )
    async def enqueue_workflow(
        self, request: Request[Any, Any, Any], workflows: Injected[WorkflowLibrary], workflow_id: FromPath[str]
    ) -> EnqueueResult:
        body: WorkflowEnqueueBody = await _body(request, WorkflowEnqueueBody)
        async with _answers(storing=True):
            return await workflows.enqueue(workflow_id, body)
