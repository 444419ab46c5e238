"""``POST /api/v1/graphs/validate`` answers every body with a verdict, never a 500: 200 for a graph that can run,
422 with every problem (as ``enqueue_batch`` refuses it) for one that cannot, 400 for no body at all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import engine_test_nodes
import invoke_core_nodes.plugin
import pytest
from conftest import edge
from litestar.testing import TestClient

from invoke_host.app import create_app


@pytest.fixture
def client() -> Iterator[TestClient[Any]]:
    app = create_app(plugins=[("core_nodes", invoke_core_nodes.plugin), ("engine_test_nodes", engine_test_nodes)],
                     entry_points=False)
    with TestClient(app) as test_client:
        yield test_client


def test_valid_graph(client: TestClient[Any]) -> None:
    graph = {"nodes": {"a": {"type": "integer", "value": 1}, "b": {"type": "add"}},
             "edges": [edge("a", "value", "b", "a")]}
    response = client.post("/api/v1/graphs/validate", json=graph)
    assert response.status_code == 200
    assert response.json() == {"valid": True, "errors": []}


def test_invalid_graph_lists_problems(client: TestClient[Any]) -> None:
    response = client.post("/api/v1/graphs/validate", json={"nodes": {"x": {"type": "nope"}, "t": {"type": "t_size",
                                                                                               "width": 0}}})
    body = response.json()
    assert response.status_code == 422
    assert {(e["node_id"], e["field"]) for e in body["extra"]["errors"]} == {("x", "type"), ("t", "width")}
    assert body["detail"].startswith("the graph is invalid: ") and "(and 1 more problem)" in body["detail"]


@pytest.mark.parametrize("body", [b"\x00\xff", b"{", b"123", b'{"nodes": "x"}', b'{"nodes": {}, "edges": null}',
                                  b'{"nodes": {"a": {"type": "add", "a": {"deep": [1, 2]}}}}', b"\xef\xbb\xbf{}"])
def test_garbage_never_500s(client: TestClient[Any], body: bytes) -> None:
    response = client.post("/api/v1/graphs/validate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["extra"]["errors"]


@pytest.mark.parametrize("body", [b"", b"  \n"])
def test_no_body_is_a_malformed_request(client: TestClient[Any], body: bytes) -> None:
    response = client.post("/api/v1/graphs/validate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"] == "send the graph to validate as the JSON body"


def test_nesting_past_the_limit_is_refused_before_validation(client: TestClient[Any]) -> None:
    # The host's JSON depth limit answers for every route, this one included, before the body is parsed.
    response = client.post("/api/v1/graphs/validate", content=b"[" * 100000,
                           headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "max_json_depth (INVOKE_HOST_MAX_JSON_DEPTH=64)" in response.json()["detail"]


def test_openapi_describes_the_body_as_a_graph(client: TestClient[Any]) -> None:
    doc = client.get("/schema/openapi.json").json()
    body = doc["paths"]["/api/v1/graphs/validate"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Graph"}
    schemas = doc["components"]["schemas"]
    assert schemas["Graph"]["properties"]["nodes"]["additionalProperties"] == {
        "$ref": "#/components/schemas/AnyInvocation"}
    assert {"Edge", "EdgeConnection", "AnyInvocation"} <= set(schemas)
