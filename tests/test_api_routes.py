"""The core API as routers with injected services: the same operations as before, services scoped to the core.

The tables below were taken from the app as it was before the routers (every handler spelling out ``/api/v1``,
every controller reading ``app.state``): the OpenAPI document must still list exactly those operations with exactly
those parameters (an injected service never shows up as a query parameter), and plugin routes must still find the
same paths reserved.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import invoke_core_events.plugin
import invoke_sqlite_storage.plugin
import pytest
from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterRoute
from litestar import Litestar, get
from litestar.handlers import BaseRouteHandler
from litestar.testing import TestClient

import invoke_host.node_templates
from invoke_host.api.dependencies import host_dependencies
from invoke_host.api.router import VERSIONED_ROUTES, api_routers
from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.host import build_host
from invoke_host.plugin_routes import RouteTable

# "METHOD path": (operationId, {"in:name"}), a trailing "?" marking a parameter that is not required.
# The ids are InvokeAI's where the route does what InvokeAI's does (invoke_host/api/operation_ids.py); the ids they
# replaced are listed in docs/api.md, "Changes to the contract".
OPERATIONS: dict[str, tuple[str, set[str]]] = {
    "GET /api/v1/app/version": ("app_version", set()),
    "DELETE /api/v1/app/invocation_cache": ("clear_invocation_cache", set()),
    "GET /api/v1/app/invocation_cache/status": ("get_invocation_cache_status", set()),
    "POST /api/v1/graphs/validate": ("validate_graph", set()),
    "GET /api/v1/images": ("list_image_dtos", {
        # cursor: keyset paging (issue 11), added after this table was taken from main.
        "query:categories?", "query:cursor?", "query:exclude_categories?", "query:image_origin?",
        "query:is_intermediate?", "query:limit?", "query:offset?", "query:order_dir?", "query:search_term?",
        "query:starred_first?",
    }),
    "POST /api/v1/images/delete": ("delete_images_from_list", set()),
    "DELETE /api/v1/images/i/{image_name}": ("delete_image", {"path:image_name"}),
    "GET /api/v1/images/i/{image_name}": ("get_image_dto", {"path:image_name"}),
    "PATCH /api/v1/images/i/{image_name}": ("update_image", {"path:image_name"}),
    "GET /api/v1/images/i/{image_name}/full": ("get_image_full", {"path:image_name"}),
    "GET /api/v1/images/i/{image_name}/graph": ("get_image_graph", {"path:image_name"}),
    "GET /api/v1/images/i/{image_name}/metadata": (
        "get_image_metadata", {"path:image_name"}
    ),
    "GET /api/v1/images/i/{image_name}/thumbnail": (
        "get_image_thumbnail", {"path:image_name"}
    ),
    "GET /api/v1/images/i/{image_name}/workflow": (
        "get_image_workflow", {"path:image_name"}
    ),
    "POST /api/v1/images/i/{image_name}/replay": (
        "replay_image", {"path:image_name", "query:dry_run?", "query:queue_id?", "query:prepend?"}
    ),
    "DELETE /api/v1/images/intermediates": ("clear_intermediates", set()),
    "POST /api/v1/images/upload": (
        "upload_image", {"query:image_category?", "query:is_intermediate?"}
    ),
    "GET /api/v1/nodes": ("list_nodes", set()),
    "GET /api/v1/plugins": ("list_plugins", set()),
    "GET /api/v1/queue/{queue_id}/b/{batch_id}/status": (
        "get_batch_status", {"path:batch_id", "path:queue_id"}
    ),
    "PUT /api/v1/queue/{queue_id}/cancel_all_except_current": (
        "cancel_all_except_current", {"path:queue_id"}
    ),
    "PUT /api/v1/queue/{queue_id}/cancel_by_batch_ids": (
        "cancel_by_batch_ids", {"path:queue_id"}
    ),
    "PUT /api/v1/queue/{queue_id}/clear": ("clear", {"path:queue_id"}),
    "POST /api/v1/queue/{queue_id}/enqueue_batch": ("enqueue_batch", {"path:queue_id"}),
    "GET /api/v1/queue/{queue_id}/i/{item_id}": ("get_queue_item", {
        "path:item_id", "path:queue_id", "query:include?",
    }),
    "GET /api/v1/queue/{queue_id}/i/{item_id}/results": ("get_queue_item_results", {
        "path:item_id", "path:queue_id", "query:cursor?", "query:limit?", "query:node_id?",
    }),
    "PUT /api/v1/queue/{queue_id}/i/{item_id}/cancel": (
        "cancel_queue_item", {"path:item_id", "path:queue_id"}
    ),
    "GET /api/v1/queue/{queue_id}/list": ("list_queue_items", {
        "path:queue_id", "query:cursor?", "query:limit?", "query:offset?", "query:status?",
    }),
    "PUT /api/v1/queue/{queue_id}/processor/pause": ("pause", {"path:queue_id"}),
    "PUT /api/v1/queue/{queue_id}/processor/resume": ("resume", {"path:queue_id"}),
    "PUT /api/v1/queue/{queue_id}/prune": ("prune", {"path:queue_id"}),
    "GET /api/v1/queue/{queue_id}/status": ("get_queue_status", {"path:queue_id"}),
    "PUT /api/v1/queue/{queue_id}/retry_items_by_id": ("retry_items_by_id", {"path:queue_id"}),
    "POST /api/v1/workflows": ("create_workflow", set()),
    "GET /api/v1/workflows": ("list_workflows", {
        "query:category?", "query:direction?", "query:order_by?", "query:page?", "query:per_page?", "query:query?",
        "query:tags?",
    }),
    "GET /api/v1/workflows/i/{workflow_id}": ("get_workflow", {"path:workflow_id"}),
    "PATCH /api/v1/workflows/i/{workflow_id}": ("update_workflow", {"path:workflow_id"}),
    "DELETE /api/v1/workflows/i/{workflow_id}": ("delete_workflow", {"path:workflow_id"}),
    "POST /api/v1/workflows/i/{workflow_id}/enqueue": ("enqueue_workflow", {"path:workflow_id"}),
    "GET /api/v2/models": ("list_model_records", {"query:base?", "query:format?", "query:name?", "query:type?"}),
    "GET /api/v2/models/get_by_attrs": ("get_model_records_by_attrs", {"query:base", "query:name", "query:type"}),
    "DELETE /api/v2/models/i/{key}": ("delete_model", {"path:key", "query:unregister?"}),
    "GET /api/v2/models/i/{key}": ("get_model_record", {"path:key"}),
    "PATCH /api/v2/models/i/{key}": ("update_model_record", {"path:key"}),
    "DELETE /api/v2/models/install": ("prune_model_install_jobs", set()),
    "GET /api/v2/models/install": ("list_model_installs", set()),
    "POST /api/v2/models/install": ("install_model", {
        "query:inplace?", "query:source", "query:subfolder?", "query:variant?",
    }),
    "DELETE /api/v2/models/install/{job_id}": ("cancel_model_install_job", {"path:job_id"}),
    "GET /api/v2/models/install/{job_id}": ("get_model_install_job", {"path:job_id"}),
    "GET /api/v2/models/scan_folder": ("scan_for_models", {"query:scan_path"}),
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
    "/api/v1/workflows": "the host's routes live there (GET,POST /api/v1/workflows ...)",
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
    assert RouteTable.for_core(api_routers()).namespaces == NAMESPACES


class _ParamsPlugin:
    """A plugin route whose query parameters share their names with services the core handlers are given."""

    @hookimpl
    def register_routes(self, register: RegisterRoute) -> None:
        @get("/api/v1/params-pack/echo", sync_to_thread=False)
        def echo(queue: str, images: str, registry: int) -> dict[str, Any]:
            return {"queue": queue, "images": images, "registry": registry}

        register(echo)


def test_no_core_handler_asks_for_two_dependencies(tmp_path: Path) -> None:
    # Litestar resolves two independent dependencies in a task group on every request: a handler that needs two
    # things is given one object holding both (see invoke_host.api.dependencies).
    app = create_app(HostConfig(root=tmp_path), entry_points=False)
    asked: dict[str, set[str]] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if route.path.startswith(("/api/v1/", "/api/v2/")) and handler.http_methods != {"OPTIONS"}:
                given = set(handler.resolve_dependencies())
                asked[f"{','.join(sorted(handler.http_methods))} {route.path}"] = given & set(
                    handler.parsed_fn_signature.parameters
                )
    assert len(asked) == len(OPERATIONS)
    assert {operation for operation, names in asked.items() if len(names) != 1} == {"GET /api/v1/app/version"}


def test_core_handlers_and_their_providers_hold_evaluated_annotations(tmp_path: Path) -> None:
    # Litestar resolves a handler's annotations at every registration, each app anew: a string annotation (a module
    # with ``from __future__ import annotations``) is compiled and evaluated each time, an evaluated one is not.
    app = create_app(HostConfig(root=tmp_path), entry_points=False)
    strings: dict[str, list[str]] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not route.path.startswith(("/api/v1/", "/api/v2/")) or handler.http_methods == {"OPTIONS"}:
                continue
            functions = [handler.fn, *(p.dependency for p in handler.resolve_dependencies().values())]
            for fn in functions:
                fn = getattr(fn, "__func__", fn)
                names = [k for k, v in getattr(fn, "__annotations__", {}).items() if isinstance(v, str)]
                if names:
                    strings[f"{fn.__module__}.{fn.__qualname__}"] = names
    assert strings == {}


def _core_handlers(app: Litestar) -> dict[str, Any]:
    return {
        f"{','.join(sorted(handler.http_methods))} {route.path}": handler
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        if route.path.startswith(("/api/v1/", "/api/v2/"))
    }


def _containers(handler: Any) -> dict[str, Any]:
    """The handler's mutable attributes: what Litestar fills in when it registers the handler or first serves it."""
    names = {name for cls in type(handler).__mro__ for name in getattr(cls, "__slots__", ())}
    return {
        name: value for name in names if isinstance(value := getattr(handler, name, None), dict | list | set)
    }


def _module_level_handlers() -> list[BaseRouteHandler]:
    """The handler objects the modules hold: each handler function, and each controller's class attributes."""
    found: list[BaseRouteHandler] = []
    for handlers in VERSIONED_ROUTES.values():
        for handler in handlers:
            if isinstance(handler, BaseRouteHandler):
                found.append(handler)
            else:
                found.extend(v for name in dir(handler) if isinstance(v := getattr(handler, name), BaseRouteHandler))
    return found


def test_two_apps_share_no_handler_state(tmp_path: Path) -> None:
    # Each app registers handlers of its own: what one app resolves and caches on a handler (its dependencies, its
    # response handlers, built at the first request) must not be what another app's handler finds.
    apps = [create_app(HostConfig(root=tmp_path / name), entry_points=False) for name in ("a", "b")]
    for app in apps:
        with TestClient(app) as client:
            assert client.get("/api/v1/app/version").status_code == 200
            assert client.get("/api/v1/nodes").status_code == 200
    first, second = (_core_handlers(app) for app in apps)
    assert first.keys() == second.keys()
    module_level = _module_level_handlers()
    assert len(module_level) == len([o for o in first if "OPTIONS" not in o])
    for operation, handler in first.items():
        other = second[operation]
        assert handler is not other, operation
        for name, value in _containers(handler).items():
            assert value is not getattr(other, name, None), f"{operation}: {name} is one object in both apps"
            assert all(value is not getattr(h, name, None) for h in module_level), f"{operation}: {name}"
    for app, handlers in zip(apps, (first, second), strict=True):
        host = app.state["host"]
        for operation, handler in handlers.items():
            if "OPTIONS" not in operation and (provider := handler.resolve_dependencies().get("registry")):
                assert provider.dependency() is host.registry, operation


def test_a_version_router_serves_one_app(tmp_path: Path) -> None:
    # An app registers the version routers as they are (no deep copy), so a second app must not be given them.
    host = create_app(HostConfig(root=tmp_path), entry_points=False).state["host"]
    routers = api_routers(host_dependencies(host))
    Litestar(route_handlers=routers)
    with pytest.raises(RuntimeError, match="already serves an app: build new ones with api_routers"):
        Litestar(route_handlers=routers)


# The plugin route declares its query parameters in the inferred style on purpose: those are the ones an
# app-wide dependency of the same name would silently take over.
@pytest.mark.filterwarnings("ignore:.*declared using deprecated inferred style")
def test_services_are_given_to_core_handlers_only(tmp_path: Path) -> None:
    plugins = [
        ("sqlite_storage", invoke_sqlite_storage.plugin),
        ("core_events", invoke_core_events.plugin),
        ("params_pack", _ParamsPlugin()),
    ]
    app = create_app(HostConfig(root=tmp_path, processor_enabled=False), plugins=plugins, entry_points=False)
    with TestClient(app) as client:
        answer = client.get("/api/v1/params-pack/echo", params={"queue": "q", "images": "i", "registry": "7"})
        assert answer.json() == {"queue": "q", "images": "i", "registry": 7}
        assert client.get("/api/v1/params-pack/echo").status_code == 400
        # The same names, in a core handler, are the host's services.
        assert client.get("/api/v1/queue/default/status").json()["queue"]["queue_id"] == "default"
        assert "params_pack" in {p["name"] for p in client.get("/api/v1/plugins").json()}
        doc = client.get("/schema/openapi.json").json()
    params = {p["name"] for p in doc["paths"]["/api/v1/params-pack/echo"]["get"]["parameters"]}
    assert params == {"queue", "images", "registry"}


def test_node_templates_are_built_once_per_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[object] = []
    build = invoke_host.node_templates.node_templates

    def counted(registry: Any) -> Any:
        builds.append(registry)
        return build(registry)

    monkeypatch.setattr(invoke_host.node_templates, "node_templates", counted)
    plugins = [("core_events", invoke_core_events.plugin)]
    first = create_app(HostConfig(root=tmp_path / "a"), plugins=plugins, entry_points=False)
    second = create_app(HostConfig(root=tmp_path / "b"), plugins=plugins, entry_points=False)
    with TestClient(first) as a, TestClient(second) as b:
        assert builds == []  # not at start-up
        answers = [a.get("/api/v1/nodes").json() for _ in range(3)]
        assert builds == [first.state.host.registry]
        assert answers[0] == answers[1] == answers[2]
        b.get("/api/v1/nodes")
        assert builds == [first.state.host.registry, second.state.host.registry]


QUEUE_503 = "the session queue is unavailable: no storage backend named 'sqlite'"
IMAGES_503 = "this server has no image store"
MODELS_503 = "model management is not running"

# On a server without storage, which answer a request gets first: a parameter Litestar validates answers 400
# before the missing service, a handler's own checks of the request come after it (as when handlers looked their
# service up on their first line).
WITHOUT_STORAGE = [
    ("GET", "/api/v1/queue/q/list?limit=0", {}, 400, "Validation failed"),
    ("GET", "/api/v1/queue/q/list?offset=1&cursor=1:2", {}, 503, QUEUE_503),
    ("POST", "/api/v1/queue/q/enqueue_batch", {"content": b"{not json"}, 503, QUEUE_503),
    ("PUT", "/api/v1/queue/q/cancel_by_batch_ids", {"json": {"batch_ids": []}}, 400, "Validation failed"),
    ("PUT", "/api/v1/queue/q/cancel_by_batch_ids", {"json": {"batch_ids": ["a"]}}, 503, QUEUE_503),
    ("PUT", "/api/v1/queue/q/processor/pause", {}, 503, QUEUE_503),
    ("GET", "/api/v1/images?order_dir=UP", {}, 400, "Validation failed"),
    ("GET", "/api/v1/images/i/x.png/full", {}, 503, IMAGES_503),
    ("PATCH", "/api/v1/images/i/x.png", {"json": {"starred": "maybe"}}, 400, "Validation failed"),
    ("POST", "/api/v1/images/upload", {"content": b"x", "headers": {"content-type": "text/plain"}}, 503, IMAGES_503),
    ("POST", "/api/v1/images/upload?image_category=bogus", {"files": {"file": ("a.png", b"x")}}, 400, "Validation"),
]
WITHOUT_MODEL_MANAGER = [
    ("GET", "/api/v2/models", {}, 503, MODELS_503),
    ("GET", "/api/v2/models?base=bogus", {}, 400, "Validation failed"),
    ("GET", "/api/v2/models/install/1", {}, 503, MODELS_503),
    ("PATCH", "/api/v2/models/i/abc", {"content": b""}, 400, "a JSON object body is required"),
    ("POST", "/api/v2/models/install?source=x&access_token=t", {}, 400, "access_token is not accepted in the URL"),
]


@pytest.fixture(scope="module")
def without_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(HostConfig(root=tmp_path_factory.mktemp("bare")), entry_points=False)) as client:
        yield client


@pytest.mark.parametrize(("method", "path", "request_args", "status", "detail"), WITHOUT_STORAGE)
def test_a_missing_service_answers_where_it_always_did(
    without_storage: TestClient[Litestar], method: str, path: str, request_args: dict[str, Any], status: int,
    detail: str,
) -> None:
    answer = without_storage.request(method, path, **request_args)
    assert (answer.status_code, answer.json()["detail"][: len(detail)]) == (status, detail)


@pytest.mark.parametrize(("method", "path", "request_args", "status", "detail"), WITHOUT_MODEL_MANAGER)
def test_a_missing_model_manager_answers_where_it_always_did(
    tmp_path: Path, method: str, path: str, request_args: dict[str, Any], status: int, detail: str
) -> None:
    host = build_host(HostConfig(root=tmp_path), entry_points=False)
    host.models = None
    with TestClient(create_app(host=host)) as client:
        answer = client.request(method, path, **request_args)
    assert (answer.status_code, answer.json()["detail"][: len(detail)]) == (status, detail)
