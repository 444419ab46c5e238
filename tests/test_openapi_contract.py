"""The OpenAPI document as a contract for generated clients: stable component names, typed bodies, errors."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema_rs
import pytest
from litestar.testing import TestClient

from invoke_host.api.operation_ids import OPERATION_IDS
from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.host import build_host
from invoke_host.openapi_closed_models import handler_body_models
from invoke_host.openapi_components import generate_components
from tests.queue.conftest import graph, make_app

# A pack whose classes share their names with the core's: a node class (ImageResizeInvocation, in the first-party
# image nodes), an output class (ImageOutput, in the SDK) and a field model (ColorField, in the image nodes), and with
# each other's (both packs are made from this text).
_PACK = """
from enum import Enum

from invoke_sdk import BaseInvocation, BaseInvocationOutput, InputField, OutputField, hookimpl
from invoke_sdk import invocation, invocation_output
from pydantic import BaseModel


class ColorField(BaseModel):
    shade: str = "{name}"


class Mode(str, Enum):
    {name} = "{name}"


@invocation_output("{name}_output")
class ImageOutput(BaseInvocationOutput):
    width: int = OutputField()


@invocation("{name}_resize")
class ImageResizeInvocation(BaseInvocation):
    color: ColorField = InputField(default_factory=ColorField)
    mode: Mode = InputField(default=Mode.{name})

    def invoke(self, context) -> ImageOutput:
        return ImageOutput(width=1)


@hookimpl
def register_invocations(register):
    register(ImageResizeInvocation)
"""


def _pack(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = ModuleType(f"{name}.nodes")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(textwrap.dedent(_PACK).format(name=name), f"<{name}>", "exec"), module.__dict__)
    return module


def test_installing_packs_that_collide_on_class_names_renames_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = build_host(HostConfig(root=tmp_path / "alone"), entry_points=True)
    before = generate_components(alone.registry).components
    assert {"Invocation.img_resize", "Output.image_output", "pack.invoke_image_nodes.ColorField"} <= set(before)

    packs = [(name, _pack(name, monkeypatch)) for name in ("pack_a", "pack_b")]
    both = build_host(HostConfig(root=tmp_path / "both"), packs, entry_points=True)
    assert not any(r.refused or r.error for r in both.registry.plugins)
    after = generate_components(both.registry).components

    # Every component of the core alone is still there, under the same name, with the same schema.
    assert {name: after[name] for name in before if not name.startswith("Any")} == {
        name: schema for name, schema in before.items() if not name.startswith("Any")
    }
    added = set(after) - set(before)
    assert added == {
        f"{kind}.{pack}{suffix}"
        for pack in ("pack_a", "pack_b")
        for kind, suffix in [("Invocation", "_resize"), ("Output", "_output"), ("pack", ".ColorField"),
                             ("pack", ".Mode")]
    }
    # Each pack's node refers to its own field models.
    node = after["Invocation.pack_b_resize"]
    assert node["properties"]["color"]["$ref"] == "#/components/schemas/pack.pack_b.ColorField"
    assert after["pack.pack_b.Mode"]["enum"] == ["pack_b"]
    mapping: dict[str, Any] = after["AnyInvocation"]["discriminator"]["mapping"]
    assert mapping["img_resize"] == "#/components/schemas/Invocation.img_resize"
    assert mapping["pack_a_resize"] == "#/components/schemas/Invocation.pack_a_resize"


def test_every_core_operation_has_a_short_id_from_the_table(tmp_path: Path) -> None:
    app = create_app(HostConfig(root=tmp_path), entry_points=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        doc = client.get("/schema/openapi.json").json()
    found = {f"{m.upper()} {p}": op["operationId"] for p, item in doc["paths"].items() for m, op in item.items()}
    assert found == dict(OPERATION_IDS)  # no stale row, no core operation left to Litestar's long ids
    assert all(re.fullmatch(r"[a-z][a-z0-9_]{2,30}", op) for op in found.values())
    assert len(set(found.values())) == len(found)


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(HostConfig(root=tmp_path_factory.mktemp("doc"), processor_enabled=False))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        doc: dict[str, Any] = client.get("/schema/openapi.json").json()
    return doc


def _operation(doc: dict[str, Any], operation_id: str) -> dict[str, Any]:
    (found,) = [op for item in doc["paths"].values() for op in item.values() if op["operationId"] == operation_id]
    return found


def _schema(op: dict[str, Any], status: str, media_type: str = "application/json") -> Any:
    return op["responses"][status]["content"][media_type]["schema"]


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def test_bodies_are_typed_with_the_real_models(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["Batch"]["properties"]["graph"] == {**ref("Graph"), "description": "The graph to run"}
    assert schemas["Graph"]["properties"]["nodes"]["additionalProperties"] == ref("AnyInvocation")
    assert schemas["QueueItem"]["properties"]["session"]["$ref"] == ref("Session")["$ref"]
    assert schemas["Session"]["properties"]["graph"] == ref("Graph")
    assert schemas["Session"]["properties"]["results"]["additionalProperties"] == ref("AnyInvocationOutput")
    complete = schemas["Event.invocation_complete"]["properties"]
    assert complete["result"]["$ref"] == ref("AnyInvocationOutput")["$ref"]
    assert complete["invocation"]["required"] == ["id", "type"]
    assert schemas["SessionResultView"]["properties"]["output"]["$ref"] == ref("AnyInvocationOutput")["$ref"]

    for operation_id in ("get_model_record", "get_model_records_by_attrs", "update_model_record", "delete_model"):
        assert _schema(_operation(document, operation_id), "200") == ref("AnyModelConfig"), operation_id
    assert _schema(_operation(document, "list_model_records"), "200") == ref("ModelRecordList")
    install = _operation(document, "install_model")
    assert _schema(install, "201") == ref("InstallJob")
    assert install["requestBody"] == {"content": {"application/json": {"schema": ref("ModelInstallRequest")}},
                                      "required": False}
    assert schemas["InstallJob"]["properties"]["config_out"]["anyOf"][0] == ref("AnyModelConfig")
    upload = _operation(document, "upload_image")
    assert upload["requestBody"]["content"]["multipart/form-data"]["schema"] == ref("ImageUploadForm")
    assert schemas["ImageUploadForm"]["properties"]["file"] == {
        "type": "string", "format": "binary", "description": "The image (PNG, JPEG, WebP ...)"}
    assert _schema(_operation(document, "get_image_full"), "200", "image/png")["format"] == "binary"
    assert _schema(_operation(document, "enqueue_batch"), "201") == ref("EnqueueResult")

    # Nothing left untyped where the wire holds a model: every object without properties says what it maps to.
    def loose(node: Any) -> bool:
        if isinstance(node, dict):
            bare = node.get("type") == "object" and not {"properties", "additionalProperties", "$ref"} & set(node)
            return bare or any(loose(v) for v in node.values())
        return isinstance(node, list) and any(loose(v) for v in node)

    assert not loose(document["paths"])


def test_every_operation_declares_one_error_body_for_each_status_it_answers(document: dict[str, Any]) -> None:
    error = {"application/json": {"schema": ref("ErrorResponse")}}
    for item in document["paths"].values():
        for op in item.values():
            errors = {s: r for s, r in op["responses"].items() if int(s) >= 400}
            assert {"400", "401", "403", "421"} <= set(errors), op["operationId"]
            assert all(r["content"] == error for r in errors.values()), op["operationId"]
            if any(p["in"] == "path" for p in op.get("parameters", [])):
                assert "404" in errors, op["operationId"]
    assert set(_operation(document, "enqueue_batch")["responses"]) == {
        "201", "400", "401", "403", "404", "408", "409", "413", "421", "422", "503"}
    assert {"411", "413", "415", "409", "503"} <= set(_operation(document, "upload_image")["responses"])
    assert "503" not in _operation(document, "app_version")["responses"]
    # One shape for every error: what the server sends on a 422 parses as ErrorResponse with node and field.
    item = document["components"]["schemas"]["ErrorItem"]
    assert {"message", "node_id", "field"} <= set(item["properties"]) and item["required"] == ["message"]
    assert '"null", "object", "array"' not in str(document).replace("'", '"')


def test_the_docs_and_the_start_page_need_no_internet(tmp_path: Path) -> None:
    app = create_app(HostConfig(root=tmp_path, token="s3cret"), entry_points=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        page = client.get("/schema")
        assert page.status_code == 200
        assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
        assert len(assets) == 4 and all(a.startswith("/schema/swagger-ui/") for a in assets), assets
        assert "http" not in page.headers["content-security-policy"]
        for asset in assets:  # served by this server, without the access token like the document itself
            answer = client.get(asset)
            assert answer.status_code == 200 and len(answer.content) > 500, asset
        assert "SwaggerUIBundle" in client.get("/schema/swagger-ui/swagger-ui-bundle.js").text

        start = client.get("/", headers={"Authorization": "Bearer s3cret"})
        assert start.status_code == 200 and start.headers["content-type"].startswith("text/html")
        links = re.findall(r'href="([^"]+)"', start.text)
        assert links[:2] == ["/schema", "/schema/openapi.json"]
        assert all(client.get(link, headers={"Authorization": "Bearer s3cret"}).status_code == 200 for link in links)


def test_titles_are_unique_so_generated_class_names_never_clash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packs = [(name, _pack(name, monkeypatch)) for name in ("pack_a", "pack_b")]
    components = generate_components(build_host(HostConfig(root=tmp_path), packs, entry_points=True).registry)
    titles = [schema.get("title", name) for name, schema in components.components.items()]
    assert len(titles) == len(set(titles))
    assert components.components["Invocation.pack_a_resize"]["title"] == "Invocation.pack_a_resize"
    assert components.components["ImageField"]["title"] == "ImageField"


def test_the_websocket_protocol_is_in_the_document_and_real_frames_follow_it(tmp_path: Path) -> None:
    app = make_app(tmp_path, processor_enabled=True)
    with TestClient(app) as client:
        doc = client.get("/schema/openapi.json").json()
        assert doc["x-websockets"]["/ws"]["client"] == ref("WsClientMessage")
        assert doc["x-websockets"]["/ws"]["server"] == ref("WsServerFrame")

        def validator(name: str) -> Any:
            return jsonschema_rs.Draft202012Validator({**ref(name), "components": doc["components"]})

        client_message, frame = validator("WsClientMessage"), validator("WsServerFrame")
        subscribe = {"subscribe": "queue", "queue_id": "q1", "batch": False}
        assert client_message.is_valid(subscribe)
        assert client_message.is_valid({"unsubscribe": "queue", "queue_id": "q1"})
        assert not client_message.is_valid({"subscribe": "galaxy", "queue_id": "q1"})
        assert not client_message.is_valid({"subscribe": "queue"})

        with client.websocket_connect("/ws") as ws:
            ws.send_text(json.dumps(subscribe))
            frames = [ws.receive_json()]
            assert client.post("/api/v1/queue/q1/enqueue_batch", json={"batch": {"graph": graph()}}).status_code == 201
            while not (frames[-1]["event"] == "queue_item_status_changed" and frames[-1]["data"]["status"] in
                       ("completed", "failed")):
                frames.append(ws.receive_json())
            ws.send_text(json.dumps({"subscribe": "galaxy", "queue_id": "q1"}))
            frames.append(ws.receive_json())
            ws.send_text(json.dumps({"unsubscribe": "queue", "queue_id": "q1"}))
            frames.append(ws.receive_json())
    events = [f["event"] for f in frames]
    assert events[0] == "subscribed" and "invocation_complete" in events and events[-2:] == ["error", "unsubscribed"]
    for received in frames:
        assert frame.is_valid(received), received
    complete = next(f for f in frames if f["event"] == "invocation_complete")
    assert not frame.is_valid({**complete, "data": {**complete["data"], "result": {"type": "no_such_output"}}})
    assert frame.is_valid(frames[:3])  # an array frame, as a client that subscribed with batch: true gets
    assert not frame.is_valid({"event": "subscribed", "data": {}})


def test_node_schemas_carry_the_keys_invokeais_node_templates_read(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    resize = schemas["Invocation.img_resize"]
    assert {k: resize[k] for k in ("class", "node_pack", "classification", "output")} == {
        "class": "invocation", "node_pack": "image_nodes", "classification": "stable",
        "output": ref("Output.image_output"),
    }
    assert resize["version"].count(".") == 2 and isinstance(resize["tags"], list) and resize["category"]
    assert schemas["Output.image_output"]["class"] == "output"
    # As InvokeAI's frontend finds nodes: every component of class "invocation", its output one of class "output".
    nodes = {name: s for name, s in schemas.items() if s.get("class") == "invocation"}
    assert set(nodes) == {r["$ref"].rsplit("/", 1)[1] for r in schemas["AnyInvocation"]["oneOf"]}
    for schema in nodes.values():
        assert schemas[schema["output"]["$ref"].rsplit("/", 1)[1]]["class"] == "output"
        fields = [field for name, field in schema["properties"].items() if name != "type"]
        assert all("field_kind" in field for field in fields), schema["title"]


def test_options_names_every_method_the_document_gives_a_path(tmp_path: Path) -> None:
    # Litestar 2 answered with the methods of the first handler registered on a path only (litestar#4169):
    # OPTIONS /api/v1/images/i/{name} said "DELETE, OPTIONS" beside a documented GET and PATCH.
    app = create_app(HostConfig(root=tmp_path, processor_enabled=False))
    with TestClient(app) as client:
        doc = client.get("/schema/openapi.json").json()
        checked = 0
        for path, item in doc["paths"].items():
            documented = {method.upper() for method in item} | {"OPTIONS"}
            url = re.sub(r"\{[^}]+\}", "1", path)
            answer = client.options(url)
            assert answer.status_code == 204, (path, answer.text)
            assert set(answer.headers["allow"].split(", ")) == documented, path
            checked += 1
        assert checked == len(doc["paths"]) > 30


def test_every_body_that_refuses_unknown_keys_says_so(document: dict[str, Any], tmp_path: Path) -> None:
    # A body model with extra="forbid" answers 400 to a key it does not know; the document must say so, or a
    # client generated from it sends such keys and is refused. Found from the handlers, not a list.
    app = create_app(HostConfig(root=tmp_path, processor_enabled=False))
    closing = {m.__name__ for m in handler_body_models(app) if m.model_config.get("extra") == "forbid"}
    assert {"DeleteImagesRequest", "ImageRecordChanges", "CancelByBatchIdsBody"} <= closing
    schemas = document["components"]["schemas"]
    for name in closing | {"EnqueueBatchBody", "Batch", "BatchDatum"}:
        assert schemas[name]["additionalProperties"] is False, name
