"""Input built to crash the server gets a 4xx with a message on every route, never a 500.

Deeply nested JSON used to end in an uncaught ``RecursionError`` in whichever parser a route used; an
upload while ``images/thumbnails`` pointed out of the store ended in a storage error nobody caught.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.routes import WebSocketRoute
from litestar.testing import TestClient
from PIL import Image

from invoke_host.app import create_app
from invoke_host.config import HostConfig

DEPTH_MESSAGE = "max_json_depth (INVOKE_HOST_MAX_JSON_DEPTH=64)"
DEEP_BODIES = {
    "array": b"[" * 5000 + b"]" * 5000,
    "object": b'{"a":' * 5000 + b"1" + b"}" * 5000,
}
# Content types a client might label a JSON body with, right or wrong; routes that parse the body
# whatever its label must still answer 4xx.
CONTENT_TYPES = [None, "application/json", "text/plain", "application/xml"]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}:]+(?::(\w+))?\}", lambda m: "1" if m.group(1) == "int" else "x", path)


def _http_routes(app: Litestar) -> list[tuple[str, str]]:
    return [
        (method, _concrete(route.path))
        for route in app.routes
        if not isinstance(route, WebSocketRoute)
        for method in sorted(route.methods - {"OPTIONS"})
    ]


def test_every_route_answers_deep_json_with_a_4xx(with_packs: Path, tmp_path: Path) -> None:
    app = create_app(HostConfig(root=tmp_path, processor_enabled=False), entry_points=True)
    routes = _http_routes(app)
    assert ("POST", "/api/v1/good/echo") in routes  # plugin routes are walked too
    refused_as_too_deep = set()
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path in routes:
            for kind, body in DEEP_BODIES.items():
                for content_type in CONTENT_TYPES:
                    headers = {"content-type": content_type} if content_type else {}
                    # With the query parameter that model install requires, so that it reaches its body.
                    reply = client.request(method, path, content=body, headers=headers, params={"source": "x"})
                    what = f"{method} {path} with a deep {kind} as {content_type}"
                    assert 400 <= reply.status_code < 500 or reply.status_code < 300, f"{what}: {reply.status_code}"
                    if reply.status_code >= 400 and not path.startswith("/schema/"):
                        # A message a person can act on (the schema pages answer an unknown page in HTML).
                        assert reply.json()["detail"], what
                    if DEPTH_MESSAGE in reply.text:
                        refused_as_too_deep.add((method, path))
    # Every route that reads a JSON body refused it for its depth, before parsing it.
    assert {
        ("POST", "/api/v1/good/echo"),
        ("POST", "/api/v1/graphs/validate"),
        ("POST", "/api/v1/queue/x/enqueue_batch"),
        ("PUT", "/api/v1/queue/x/cancel_by_batch_ids"),
        ("POST", "/api/v2/models/install"),
        ("PATCH", "/api/v2/models/i/x"),
        ("PATCH", "/api/v1/images/i/x"),
        ("POST", "/api/v1/images/delete"),
    } <= refused_as_too_deep


def test_json_within_the_depth_limit_is_accepted(tmp_path: Path) -> None:
    config = HostConfig(root=tmp_path, processor_enabled=False, max_json_depth=3)
    with TestClient(create_app(config)) as client:
        ok = client.post("/api/v1/images/delete", json={"image_names": []})  # depth 2
        assert ok.status_code == 200
        deep = client.post("/api/v1/images/delete", content=b'{"image_names": [[["x"]]]}')  # depth 4
        assert deep.status_code == 400
        assert "max_json_depth (INVOKE_HOST_MAX_JSON_DEPTH=3)" in deep.json()["detail"]


def _depth_refused(text: bytes, limit: int, pieces: int = 1) -> bool:
    from invoke_host.security.json_depth import JsonDepthMeter, JsonTooDeepError

    meter = JsonDepthMeter(limit)
    step = max(1, len(text) // pieces)
    try:
        for start in range(0, len(text), step):
            meter.feed(text[start:start + step])
    except JsonTooDeepError:
        return True
    return False


@pytest.mark.parametrize("pieces", [1, 3, 1000])  # split anywhere, mid-string and mid-escape included
def test_the_depth_meter_counts_structure_only(pieces: int) -> None:
    assert not _depth_refused(b"[" * 64 + b"]" * 64, 64, pieces)
    assert _depth_refused(b"[" * 65 + b"]" * 65, 64, pieces)
    assert not _depth_refused(b"[[[[[]]]]]" * 100, 5, pieces)  # siblings do not add up
    # Brackets in strings, escaped quotes and escaped backslashes are text, not structure.
    text = json.dumps({"prompt": "[[[[{{{{ \" ]]]] \\", "n": [["a\\\\\"[["]]}).encode()
    assert json.loads(text)["n"] == [['a\\\\"[[']]
    assert not _depth_refused(text, 3, pieces)
    assert _depth_refused(text, 2, pieces)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_an_upload_into_a_broken_image_store_is_refused_with_a_message_and_logged(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (root / "images").mkdir(parents=True)
    os.symlink(outside, root / "images" / "thumbnails")
    # On the logger itself: Litestar re-configures the root logger's handlers when an app is made.
    records = _Records()
    logging.getLogger("invoke_host.images").addHandler(records)
    try:
        with TestClient(create_app(HostConfig(root=root, processor_enabled=False))) as client:
            reply = client.post("/api/v1/images/upload", files={"file": ("a.png", _png(), "image/png")})
    finally:
        logging.getLogger("invoke_host.images").removeHandler(records)
    assert reply.status_code == 409
    assert "the server cannot store images right now" in reply.json()["detail"]
    assert "not with this image" in reply.json()["detail"]
    assert any(str(root / "images") in m and "outside the image store" in m for m in records.messages), records
    # Nothing was written, inside the store or where the symlink points, and no record.
    with TestClient(create_app(HostConfig(root=root, processor_enabled=False))) as client:
        assert client.get("/api/v1/images").json()["total"] == 0
    assert [p.name for p in (root / "images").iterdir()] == ["thumbnails"]
    assert list(outside.iterdir()) == []
