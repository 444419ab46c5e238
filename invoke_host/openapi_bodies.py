"""Bodies the handlers read or write raw, described with the real models for the OpenAPI document.

Some handlers cannot let Litestar type their bodies: the graph's nodes are a union built at the freeze, a model
config is a union told apart by two fields, stored outputs are JSON text sent as they are, an upload is read as a
form by hand. Their models carry ``dict[str, Any]`` where the wire holds a graph, a node, an output or a config. The
document says what the wire really holds: :data:`TYPED_FIELDS` gives such fields their schemas, and
:data:`TYPED_OPERATIONS` the request and response bodies of such operations, by operation id. The fuzz test
(tests/test_api_fuzz.py) checks every answer against these schemas, so they cannot drift from the handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from invoke_sdk.models.install import InstallJob
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from invoke_host.queue import EnqueueBatchBody
from invoke_host.workflows import WorkflowEnqueueBody, WorkflowIn, WorkflowUpdate

__all__ = ["BODY_MODELS", "TYPED_FIELDS", "TYPED_OPERATIONS", "body_components", "type_bodies"]

BODY_MODELS: tuple[type[BaseModel], ...] = (
    EnqueueBatchBody, InstallJob, WorkflowIn, WorkflowUpdate, WorkflowEnqueueBody,
)


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


_NODE_IN_EVENT = {
    "type": "object",
    "description": "The node with its inputs: 'id' and 'type' always (narrow on 'type' with AnyInvocation); inputs "
    "that arrived over edges may be left out (they are earlier nodes' results, sent in their own events)",
    "properties": {"id": {"type": "string"}, "type": {"type": "string"}},
    "required": ["id", "type"],
    "additionalProperties": True,
}

_SESSION = {
    "title": "Session",
    "type": "object",
    "description": "A queue item's session: as enqueued (id, batch_id, graph, validated_with) and, when asked for "
    "with include=session, everything it produced",
    "properties": {
        "id": {"type": "string"},
        "batch_id": {"type": "string"},
        "graph": _ref("Graph"),
        "validated_with": {"type": "string", "description": "The registry digest the graph was validated against"},
        "results": {
            "type": "object",
            "additionalProperties": _ref("AnyInvocationOutput"),
            "description": "Prepared node id -> its output",
        },
        "executed_history": {"type": "array", "items": {"type": "string"}, "description": "In execution order"},
        "source_results": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Source node id -> its prepared node ids in iteration order",
        },
        "errors": {"type": "object", "additionalProperties": _ref("SessionNodeErrorView")},
        "source_errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
    },
    "required": ["id", "batch_id", "graph"],
}

_EXTRA_COMPONENTS: dict[str, Any] = {
    "Session": _SESSION,
    "ModelRecordList": {
        "title": "ModelRecordList",
        "type": "object",
        "properties": {"models": {"type": "array", "items": _ref("AnyModelConfig")}},
        "required": ["models"],
    },
    "ModelInstallRequest": {
        "title": "ModelInstallRequest",
        "type": "object",
        "description": "Config overrides for the installed model (any field of its config: name, base, description, "
        "prediction_type ...) and, under access_token, the credential for a gated repo or a private URL (sent to "
        "the source only, never stored, logged or returned)",
        "properties": {
            # pattern: at least one character that is not whitespace, as the route checks (a blank token is refused).
            "access_token": {"type": "string", "minLength": 1, "pattern": "\\S", "writeOnly": True},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "base": _ref("BaseModelType"),
        },
        "additionalProperties": True,
    },
    "ModelRecordChanges": {
        "title": "ModelRecordChanges",
        "type": "object",
        "description": "The fields of the model's config to change (not key, path or inplace)",
        "properties": {"name": {"type": "string"}, "description": {"type": "string"}, "base": _ref("BaseModelType")},
        "additionalProperties": True,
    },
    "PrunedJobs": {
        "title": "PrunedJobs",
        "type": "object",
        "properties": {"pruned": {"type": "integer", "description": "How many finished jobs were forgotten"}},
        "required": ["pruned"],
    },
    "FoundModel": {
        "title": "FoundModel",
        "type": "object",
        "properties": {"path": {"type": "string"}, "is_installed": {"type": "boolean"}},
        "required": ["path", "is_installed"],
    },
    "ImageUploadForm": {
        "title": "ImageUploadForm",
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "The image (PNG, JPEG, WebP ...)"},
            "image_category": _ref("ImageCategory"),
            "is_intermediate": {"type": "boolean"},
        },
        "required": ["file"],
    },
}

TYPED_FIELDS: Mapping[tuple[str, str], dict[str, Any]] = {
    ("Batch", "graph"): {**_ref("Graph"), "description": "The graph to run"},
    ("QueueItem", "session"): _ref("Session"),
    ("QueueItemView", "session"): _ref("Session"),
    ("SessionResultView", "output"): {**_ref("AnyInvocationOutput"), "description": "The node's output"},
    ("Event.invocation_started", "invocation"): _NODE_IN_EVENT,
    ("Event.invocation_progress", "invocation"): _NODE_IN_EVENT,
    ("Event.invocation_error", "invocation"): _NODE_IN_EVENT,
    ("Event.invocation_complete", "invocation"): _NODE_IN_EVENT,
    ("Event.invocation_complete", "result"): {**_ref("AnyInvocationOutput"), "description": "The node's output"},
    ("InstallJob", "config_out"): {"anyOf": [_ref("AnyModelConfig"), {"type": "null"}]},
}
"""(component, property) -> the schema of what that property holds on the wire."""

_JSON_OR_NULL = {"anyOf": [{"type": "object", "additionalProperties": True}, {"type": "null"}]}
_BINARY = {"type": "string", "format": "binary"}

TYPED_OPERATIONS: Mapping[str, dict[str, Any]] = {
    "list_model_records": {"200": _ref("ModelRecordList")},
    "get_model_records_by_attrs": {"200": _ref("AnyModelConfig")},
    "get_model_record": {"200": _ref("AnyModelConfig")},
    "update_model_record": {"200": _ref("AnyModelConfig"), "body": (_json(_ref("ModelRecordChanges")), True)},
    "delete_model": {"200": _ref("AnyModelConfig")},
    "install_model": {"201": _ref("InstallJob"), "body": (_json(_ref("ModelInstallRequest")), False)},
    "list_model_installs": {"200": {"type": "array", "items": _ref("InstallJob")}},
    "get_model_install_job": {"200": _ref("InstallJob")},
    "cancel_model_install_job": {"200": _ref("InstallJob")},
    "prune_model_install_jobs": {"200": _ref("PrunedJobs")},
    "scan_for_models": {"200": {"type": "array", "items": _ref("FoundModel")}},
    "upload_image": {"body": ({"multipart/form-data": {"schema": _ref("ImageUploadForm")}}, True)},
    "get_image_metadata": {"200": _JSON_OR_NULL},
    "get_image_graph": {"200": _JSON_OR_NULL},
    "get_image_full": {"200": ("image/png", _BINARY)},
    "get_image_thumbnail": {"200": ("image/webp", _BINARY)},
}
"""operationId -> response schemas by status (or (media type, schema) where it is not JSON), and ``body``:
(request body content, required)."""


@cache
def body_components() -> dict[str, Any]:
    """Component schemas of every model in :data:`BODY_MODELS`, and of the bodies no model describes."""
    _, top = models_json_schema([(m, "validation") for m in BODY_MODELS], ref_template="#/components/schemas/{model}")
    return {**top.get("$defs", {}), **_EXTRA_COMPONENTS}


def type_bodies(schemas: dict[str, Any], paths: dict[str, Any]) -> None:
    """Give the fields in :data:`TYPED_FIELDS` and the operations in :data:`TYPED_OPERATIONS` their schemas.

    Changes ``schemas`` and ``paths`` in place: the caller passes copies of the components and paths it merges.
    """
    for (component, prop), schema in TYPED_FIELDS.items():
        if component in schemas:
            model = schemas[component] = dict(schemas[component])
            old = model["properties"][prop]
            typed = dict(schema)
            if "description" in old and "description" not in typed:
                typed["description"] = old["description"]
            model["properties"] = {**model["properties"], prop: typed}
    for item in paths.values():
        for operation in item.values():
            typed_op = TYPED_OPERATIONS.get(operation.get("operationId", ""))
            if typed_op is None:
                continue
            for status, schema in typed_op.items():
                if status == "body":
                    content, required = schema
                    operation["requestBody"] = {"content": content, "required": required}
                    continue
                media_type, schema = schema if isinstance(schema, tuple) else ("application/json", schema)
                operation["responses"][status]["content"] = {media_type: {"schema": schema}}
