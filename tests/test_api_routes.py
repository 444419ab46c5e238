"""The core API as one router per version: the same operations as before, the same paths reserved.

The tables below were taken from the app as it was before the routers (every handler spelling out ``/api/v1``):
the OpenAPI document must still list exactly those operations with exactly those parameters, and plugin routes
must still find the same paths reserved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from invoke_host.app import ROUTES, create_app
from invoke_host.config import HostConfig
from invoke_host.plugin_routes import RouteTable

# "METHOD path": (operationId, {"in:name"}), a trailing "?" marking a parameter that is not required.
OPERATIONS: dict[str, tuple[str, set[str]]] = {
    "GET /api/v1/app/version": ("ApiV1AppVersionGetVersion", set()),
    "POST /api/v1/graphs/validate": ("ApiV1GraphsValidateValidateGraphRoute", set()),
    "GET /api/v1/images": ("ApiV1ImagesListImages", {
        "query:categories?", "query:exclude_categories?", "query:image_origin?", "query:is_intermediate?",
        "query:limit?", "query:offset?", "query:order_dir?", "query:search_term?", "query:starred_first?",
    }),
    "POST /api/v1/images/delete": ("ApiV1ImagesDeleteDeleteImages", set()),
    "DELETE /api/v1/images/i/{image_name}": ("ApiV1ImagesImageNameDeleteImage", {"path:image_name"}),
    "GET /api/v1/images/i/{image_name}": ("ApiV1ImagesImageNameGetImage", {"path:image_name"}),
    "PATCH /api/v1/images/i/{image_name}": ("ApiV1ImagesImageNameUpdateImage", {"path:image_name"}),
    "GET /api/v1/images/i/{image_name}/full": ("ApiV1ImagesImageNameFullGetImageFull", {"path:image_name"}),
    "GET /api/v1/images/i/{image_name}/graph": ("ApiV1ImagesImageNameGraphGetImageGraph", {"path:image_name"}),
    "GET /api/v1/images/i/{image_name}/metadata": (
        "ApiV1ImagesImageNameMetadataGetImageMetadata", {"path:image_name"}
    ),
    "GET /api/v1/images/i/{image_name}/thumbnail": (
        "ApiV1ImagesImageNameThumbnailGetImageThumbnail", {"path:image_name"}
    ),
    "GET /api/v1/images/i/{image_name}/workflow": (
        "ApiV1ImagesImageNameWorkflowGetImageWorkflow", {"path:image_name"}
    ),
    "DELETE /api/v1/images/intermediates": ("ApiV1ImagesIntermediatesDeleteIntermediates", set()),
    "POST /api/v1/images/upload": (
        "ApiV1ImagesUploadUploadImage", {"query:image_category?", "query:is_intermediate?"}
    ),
    "GET /api/v1/nodes": ("ApiV1NodesListNodes", set()),
    "GET /api/v1/plugins": ("ApiV1PluginsListPlugins", set()),
    "GET /api/v1/queue/{queue_id}/b/{batch_id}/status": (
        "ApiV1QueueQueueIdBBatchIdStatusBatchStatus", {"path:batch_id", "path:queue_id"}
    ),
    "PUT /api/v1/queue/{queue_id}/cancel_all_except_current": (
        "ApiV1QueueQueueIdCancelAllExceptCurrentCancelAllExceptCurrent", {"path:queue_id"}
    ),
    "PUT /api/v1/queue/{queue_id}/cancel_by_batch_ids": (
        "ApiV1QueueQueueIdCancelByBatchIdsCancelByBatchIds", {"path:queue_id"}
    ),
    "PUT /api/v1/queue/{queue_id}/clear": ("ApiV1QueueQueueIdClearClear", {"path:queue_id"}),
    "POST /api/v1/queue/{queue_id}/enqueue_batch": ("ApiV1QueueQueueIdEnqueueBatchEnqueueBatch", {"path:queue_id"}),
    "GET /api/v1/queue/{queue_id}/i/{item_id}": ("ApiV1QueueQueueIdItemIdGetItem", {"path:item_id", "path:queue_id"}),
    "PUT /api/v1/queue/{queue_id}/i/{item_id}/cancel": (
        "ApiV1QueueQueueIdItemIdCancelCancelItem", {"path:item_id", "path:queue_id"}
    ),
    "GET /api/v1/queue/{queue_id}/list": ("ApiV1QueueQueueIdListListItems", {
        "path:queue_id", "query:cursor?", "query:limit?", "query:offset?", "query:status?",
    }),
    "PUT /api/v1/queue/{queue_id}/processor/pause": ("ApiV1QueueQueueIdProcessorPausePause", {"path:queue_id"}),
    "PUT /api/v1/queue/{queue_id}/processor/resume": ("ApiV1QueueQueueIdProcessorResumeResume", {"path:queue_id"}),
    "PUT /api/v1/queue/{queue_id}/prune": ("ApiV1QueueQueueIdPrunePrune", {"path:queue_id"}),
    "GET /api/v1/queue/{queue_id}/status": ("ApiV1QueueQueueIdStatusStatus", {"path:queue_id"}),
    "GET /api/v2/models": ("ApiV2ModelsListModels", {"query:base?", "query:format?", "query:name?", "query:type?"}),
    "GET /api/v2/models/get_by_attrs": ("ApiV2ModelsGetByAttrsGetByAttrs", {"query:base", "query:name", "query:type"}),
    "DELETE /api/v2/models/i/{key}": ("ApiV2ModelsIKeyDeleteModel", {"path:key", "query:unregister?"}),
    "GET /api/v2/models/i/{key}": ("ApiV2ModelsIKeyGetModel", {"path:key"}),
    "PATCH /api/v2/models/i/{key}": ("ApiV2ModelsIKeyUpdateModel", {"path:key"}),
    "DELETE /api/v2/models/install": ("ApiV2ModelsInstallPruneJobs", set()),
    "GET /api/v2/models/install": ("ApiV2ModelsInstallListJobs", set()),
    "POST /api/v2/models/install": ("ApiV2ModelsInstallInstallModel", {
        "query:inplace?", "query:source", "query:subfolder?", "query:variant?",
    }),
    "DELETE /api/v2/models/install/{job_id}": ("ApiV2ModelsInstallJobIdCancelJob", {"path:job_id"}),
    "GET /api/v2/models/install/{job_id}": ("ApiV2ModelsInstallJobIdGetJob", {"path:job_id"}),
    "GET /api/v2/models/scan_folder": ("ApiV2ModelsScanFolderScanFolder", {"query:scan_path"}),
}

# What a plugin route is checked against: each reserved namespace and the reason a refusal gives.
NAMESPACES = {
    "/schema": "/schema and everything under it answer without the access token",
    "/api/v1/app": "the host's routes live there (GET /api/v1/app/version ...)",
    "/api/v1/nodes": "the host's routes live there (GET /api/v1/nodes ...)",
    "/api/v1/queue": "the host's routes live there (GET /api/v1/queue/{queue_id:str}/b/{batch_id:str}/status ...)",
    "/api/v1/graphs": "the host's routes live there (POST /api/v1/graphs/validate ...)",
    "/api/v1/images": "the host's routes live there (DELETE,GET,PATCH /api/v1/images/i/{image_name:str} ...)",
    "/api/v2/models": "the host's routes live there (DELETE,GET /api/v2/models/install/{job_id:int} ...)",
    "/api/v1/plugins": "the host's routes live there (GET /api/v1/plugins ...)",
    "/api/v1/app/version": "/api/v1/app/version and everything under it answer without the access token",
}


def _operations(doc: dict[str, Any]) -> dict[str, tuple[str, set[str]]]:
    found = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            params = {f"{p['in']}:{p['name']}{'' if p.get('required') else '?'}" for p in op.get("parameters", [])}
            found[f"{method.upper()} {path}"] = (op["operationId"], params)
    return found


def test_every_operation_keeps_its_id_and_exactly_its_parameters(tmp_path: Path) -> None:
    with TestClient(create_app(HostConfig(root=tmp_path), entry_points=False)) as client:
        doc = client.get("/schema/openapi.json").json()
    found = _operations(doc)
    assert set(found) == set(OPERATIONS)
    for operation, expected in OPERATIONS.items():
        assert found[operation] == expected, operation


def test_plugin_routes_are_checked_against_the_same_core_paths() -> None:
    assert RouteTable.for_core(ROUTES).namespaces == NAMESPACES
