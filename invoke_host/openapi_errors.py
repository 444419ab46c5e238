"""One error body, declared on every core operation for every status it can answer.

Every error the server sends is ``{"status_code": N, "detail": "...", "extra": ...}`` (Litestar's exception
response; the host's own refusals write the same shape). Litestar declares only a 400, with a schema generated
clients reject (``"type": ["null", "object", "array"]``); a generated client handed an undeclared status returns
nothing. Here each operation gets the statuses every request can meet (:data:`ALWAYS`), the ones its shape brings
(path parameters, a request body) and the ones its handler raises (:data:`RAISED`). tests/test_api_fuzz.py runs
schemathesis' status-code conformance check over every operation: an answer with an undeclared status fails it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ALWAYS", "ERROR_COMPONENTS", "RAISED", "declare_errors"]

_ERROR = "#/components/schemas/ErrorResponse"
_ITEMS = {"type": "array", "items": {"$ref": "#/components/schemas/ErrorItem"}}

ERROR_COMPONENTS: dict[str, Any] = {
    "ErrorResponse": {
        "title": "ErrorResponse",
        "type": "object",
        "description": "What went wrong, in words a person can act on, and the details that say where",
        "properties": {
            "status_code": {"type": "integer"},
            "detail": {"type": "string"},
            "extra": {
                "description": "Details: the problems found (each with its node and field where it has one), or "
                "other facts about the refusal (such as the existing model of a duplicate install)",
                "anyOf": [
                    _ITEMS,
                    {"type": "object", "properties": {"errors": _ITEMS}, "additionalProperties": True},
                    {"type": "null"},
                ],
            },
        },
        "required": ["status_code", "detail"],
    },
    "ErrorItem": {
        "title": "ErrorItem",
        "type": "object",
        "description": "One problem: its message and where it is (the fields that apply)",
        "properties": {
            "message": {"type": "string"},
            "node_id": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "The graph node"},
            "field": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "The node's field"},
            "node_path": {"type": "string", "description": "The node a batch datum goes into"},
            "field_name": {"type": "string", "description": "The field a batch datum goes into"},
            "item_index": {"type": "integer", "description": "Which of the datum's items"},
            "loc": {"type": "string", "description": "Where in the body, dotted"},
            "key": {"type": "string", "description": "The parameter or body key"},
            "source": {"type": "string", "description": "Where the parameter is: query, path, body ..."},
        },
        "required": ["message"],
        "additionalProperties": True,
    },
}

STATUS_TEXT: Mapping[int, str] = {
    400: "The request is malformed: a parameter or the body fails validation",
    401: "The server has an access token and the request lacks it",
    403: "A cross-site request from an origin the server does not allow",
    404: "Nothing is at this path (an unknown id, or a path parameter of the wrong type)",
    408: "The client stopped sending the request body (request_body_timeout_s)",
    409: "The request conflicts with the server's state (a duplicate, or storage that refused)",
    411: "The upload has no Content-Length",
    413: "The request body or one of its parts is over a limit (the error names the setting)",
    421: "The Host header names a host this server does not answer to (allowed_hosts)",
    415: "The body is not of a media type the operation takes",
    422: "The request matches the document but its values cannot be used here: a graph or batch problem (extra "
    "lists each with node and field), a cursor no listing gave out, a source or folder that resolves to nothing",
    503: "The service this operation needs is not running on this server (the error says why)",
}

ALWAYS = frozenset({400, 401, 403, 421})
"""Any request can fail validation, lack the access token, come from a refused origin or name a wrong host."""

RAISED: Mapping[str, frozenset[int]] = {
    "validate_graph": frozenset({422}),
    "enqueue_batch": frozenset({409, 413, 422, 503}),
    "list_queue_items": frozenset({422, 503}),
    "get_queue_item": frozenset({503}),
    "get_queue_item_results": frozenset({422, 503}),
    "cancel_queue_item": frozenset({503}),
    "cancel_by_batch_ids": frozenset({503}),
    "cancel_all_except_current": frozenset({503}),
    "clear": frozenset({503}),
    "prune": frozenset({503}),
    "get_queue_status": frozenset({503}),
    "get_batch_status": frozenset({503}),
    "pause": frozenset({503}),
    "resume": frozenset({503}),
    "retry_items_by_id": frozenset({413, 503}),
    "create_workflow": frozenset({409, 413, 422, 503}),
    "list_workflows": frozenset({422, 503}),
    "get_workflow": frozenset({503}),
    "update_workflow": frozenset({409, 413, 422, 503}),
    "delete_workflow": frozenset({409, 503}),
    "enqueue_workflow": frozenset({409, 413, 422, 503}),
    "upload_image": frozenset({409, 411, 413, 415, 503}),
    "list_image_dtos": frozenset({422, 503}),
    "get_image_dto": frozenset({503}),
    "update_image": frozenset({503}),
    "delete_image": frozenset({503}),
    "get_image_full": frozenset({503}),
    "get_image_thumbnail": frozenset({503}),
    "get_image_metadata": frozenset({503}),
    "get_image_workflow": frozenset({503}),
    "get_image_graph": frozenset({503}),
    "replay_image": frozenset({409, 413, 503}),
    "clear_intermediates": frozenset({503}),
    "delete_images_from_list": frozenset({503}),
    "list_model_records": frozenset({503}),
    "get_model_records_by_attrs": frozenset({404, 503}),
    "get_model_record": frozenset({503}),
    "update_model_record": frozenset({409, 422, 503}),
    "delete_model": frozenset({409, 503}),
    "install_model": frozenset({409, 422, 503}),
    "list_model_installs": frozenset({503}),
    "get_model_install_job": frozenset({503}),
    "cancel_model_install_job": frozenset({409, 503}),
    "prune_model_install_jobs": frozenset({503}),
    "scan_for_models": frozenset({422, 503}),
}
"""operationId -> the statuses its handler (or the service it calls) raises, beyond those of its shape."""


def statuses(operation: dict[str, Any]) -> set[int]:
    """Every error status ``operation`` can answer."""
    found = set(ALWAYS) | RAISED.get(operation.get("operationId", ""), frozenset())
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        found.add(404)
    if "requestBody" in operation:
        found |= {408, 413}
    return found


def declare_errors(paths: dict[str, Any]) -> None:
    """Declare :data:`ERROR_COMPONENTS`' ``ErrorResponse`` for each status of each operation (in place).

    Litestar's own 400 is replaced on every operation, plugin routes' too: its schema is the one clients reject.
    """
    for item in paths.values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses(operation)):
                responses[str(status)] = {
                    "description": STATUS_TEXT[status],
                    "content": {"application/json": {"schema": {"$ref": _ERROR}}},
                }
