"""The core operations' ids: short, unique, and InvokeAI's where the route does what InvokeAI's does.

Generated clients name their functions after these (``enqueue_batch``, ``enqueueBatch``), so an id is part of
the contract: a change breaks clients and is recorded in docs/api.md ("Changes to the contract"). One table, keyed
by method and path as the OpenAPI document writes them, so a handler's code never carries it. Plugin routes keep
Litestar's ids (their plugins may name them with ``operation_id=``).
"""

from __future__ import annotations

from collections.abc import Mapping

# Litestar's own creator, for plugin routes: it is what OpenAPIConfig uses unless told otherwise.
from litestar._openapi.utils import default_operation_id_creator
from litestar.handlers import HTTPRouteHandler
from litestar.types import Method
from litestar.types.internal_types import PathParameterDefinition

from invoke_host.api_versions import API_V1, API_V2

__all__ = ["OPERATION_IDS", "operation_id_creator"]

OPERATION_IDS: Mapping[str, str] = {
    f"GET {API_V1}/app/version": "app_version",
    f"GET {API_V1}/app/invocation_cache/status": "get_invocation_cache_status",
    f"DELETE {API_V1}/app/invocation_cache": "clear_invocation_cache",
    f"GET {API_V1}/plugins": "list_plugins",
    f"GET {API_V1}/nodes": "list_nodes",
    f"POST {API_V1}/graphs/validate": "validate_graph",
    f"POST {API_V1}/queue/{{queue_id}}/enqueue_batch": "enqueue_batch",
    f"GET {API_V1}/queue/{{queue_id}}/list": "list_queue_items",
    f"GET {API_V1}/queue/{{queue_id}}/i/{{item_id}}": "get_queue_item",
    f"GET {API_V1}/queue/{{queue_id}}/i/{{item_id}}/results": "get_queue_item_results",
    f"PUT {API_V1}/queue/{{queue_id}}/i/{{item_id}}/cancel": "cancel_queue_item",
    f"PUT {API_V1}/queue/{{queue_id}}/cancel_by_batch_ids": "cancel_by_batch_ids",
    f"PUT {API_V1}/queue/{{queue_id}}/cancel_all_except_current": "cancel_all_except_current",
    f"PUT {API_V1}/queue/{{queue_id}}/clear": "clear",
    f"PUT {API_V1}/queue/{{queue_id}}/prune": "prune",
    f"GET {API_V1}/queue/{{queue_id}}/status": "get_queue_status",
    f"GET {API_V1}/queue/{{queue_id}}/b/{{batch_id}}/status": "get_batch_status",
    f"PUT {API_V1}/queue/{{queue_id}}/processor/pause": "pause",
    f"PUT {API_V1}/queue/{{queue_id}}/processor/resume": "resume",
    f"PUT {API_V1}/queue/{{queue_id}}/retry_items_by_id": "retry_items_by_id",
    f"POST {API_V1}/workflows": "create_workflow",
    f"GET {API_V1}/workflows": "list_workflows",
    f"GET {API_V1}/workflows/i/{{workflow_id}}": "get_workflow",
    f"PATCH {API_V1}/workflows/i/{{workflow_id}}": "update_workflow",
    f"DELETE {API_V1}/workflows/i/{{workflow_id}}": "delete_workflow",
    f"POST {API_V1}/workflows/i/{{workflow_id}}/enqueue": "enqueue_workflow",
    f"POST {API_V1}/images/upload": "upload_image",
    f"GET {API_V1}/images": "list_image_dtos",
    f"GET {API_V1}/images/i/{{image_name}}": "get_image_dto",
    f"PATCH {API_V1}/images/i/{{image_name}}": "update_image",
    f"DELETE {API_V1}/images/i/{{image_name}}": "delete_image",
    f"GET {API_V1}/images/i/{{image_name}}/full": "get_image_full",
    f"GET {API_V1}/images/i/{{image_name}}/thumbnail": "get_image_thumbnail",
    f"GET {API_V1}/images/i/{{image_name}}/metadata": "get_image_metadata",
    f"GET {API_V1}/images/i/{{image_name}}/workflow": "get_image_workflow",
    f"GET {API_V1}/images/i/{{image_name}}/graph": "get_image_graph",
    f"POST {API_V1}/images/i/{{image_name}}/replay": "replay_image",
    f"DELETE {API_V1}/images/intermediates": "clear_intermediates",
    f"POST {API_V1}/images/delete": "delete_images_from_list",
    f"GET {API_V2}/models": "list_model_records",
    f"GET {API_V2}/models/get_by_attrs": "get_model_records_by_attrs",
    f"GET {API_V2}/models/i/{{key}}": "get_model_record",
    f"PATCH {API_V2}/models/i/{{key}}": "update_model_record",
    f"DELETE {API_V2}/models/i/{{key}}": "delete_model",
    f"POST {API_V2}/models/install": "install_model",
    f"GET {API_V2}/models/install": "list_model_installs",
    f"DELETE {API_V2}/models/install": "prune_model_install_jobs",
    f"GET {API_V2}/models/install/{{job_id}}": "get_model_install_job",
    f"DELETE {API_V2}/models/install/{{job_id}}": "cancel_model_install_job",
    f"GET {API_V2}/models/scan_folder": "scan_for_models",
}
"""``"METHOD /path"`` (path parameters as ``{name}``) -> operationId, for every core operation."""


def operation_id_creator(
    handler: HTTPRouteHandler, method: Method, components: list[str | PathParameterDefinition]
) -> str:
    """An ``OpenAPIConfig.operation_id_creator``: the table's id for a core operation, Litestar's for any other."""
    path = "/" + "/".join(f"{{{c.name}}}" if isinstance(c, PathParameterDefinition) else c for c in components)
    # method may be an HttpMethod (a str enum, which an f-string would write as "HttpMethod.GET").
    return OPERATION_IDS.get(f"{method.upper()} {path}") or default_operation_id_creator(handler, method, components)
