"""Every answer tells the browser how to treat it: no content sniffing, no framing, no referrer, and a
Content-Security-Policy (a strict one on pages; 'load nothing' on JSON and images)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
from litestar import Litestar
from litestar.routes import WebSocketRoute
from litestar.testing import TestClient
from PIL import Image

from invoke_host.app import create_app
from invoke_host.config import HostConfig

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
EVERY_ANSWER = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}:]+(?::(\w+))?\}", lambda m: "1" if m.group(1) == "int" else "x", path)


def _get_routes(app: Litestar) -> list[str]:
    return [_concrete(r.path) for r in app.routes if not isinstance(r, WebSocketRoute) and "GET" in r.methods]


def _assert_guarded(reply: httpx.Response, what: str) -> None:
    for name, value in EVERY_ANSWER.items():
        assert reply.headers.get_list(name) == [value], f"{what}: {name}"
    csp = reply.headers.get_list("content-security-policy")
    assert len(csp) == 1 and "frame-ancestors 'none'" in csp[0], f"{what}: {csp}"
    if reply.headers.get("content-type", "").startswith("text/html"):
        assert "default-src 'none'" in csp[0] and "base-uri 'none'" in csp[0], what
    else:
        assert csp[0] == API_POLICY, what


def test_every_answer_of_every_route_carries_the_headers(tmp_path: Path) -> None:
    app = create_app(HostConfig(root=tmp_path, processor_enabled=False))
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    with TestClient(app) as client:
        name = client.post("/api/v1/images/upload", files={"file": ("a.png", png.getvalue(), "image/png")}).json()[
            "image_name"
        ]
        paths = _get_routes(app)
        assert "/schema" in paths and "/api/v1/images/i/x/full" in paths
        for path in paths:
            reply = client.get(path)
            _assert_guarded(reply, f"GET {path} ({reply.status_code})")
        # Answers that are files (which set nosniff themselves: it must not appear twice) ...
        for suffix in ("full", "thumbnail", "metadata"):
            _assert_guarded(client.get(f"/api/v1/images/i/{name}/{suffix}"), suffix)
        # ... errors from handlers, and refusals by the guards in front of them.
        _assert_guarded(client.post("/api/v1/images/delete", content=b"{"), "invalid JSON")
        _assert_guarded(client.get("/no/such/route"), "404")
        _assert_guarded(client.get("/api/v1/nodes", headers={"Host": "evil.example"}), "foreign Host")
        _assert_guarded(client.put("/api/v1/queue/q/clear", headers={"Origin": "https://evil.example"}), "cross-site")


def test_json_says_what_it_is(tmp_path: Path) -> None:
    with TestClient(create_app(HostConfig(root=tmp_path, processor_enabled=False))) as client:
        reply = client.get("/api/v1/nodes")
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-content-type-options"] == "nosniff"


def test_the_schema_page_may_load_only_what_it_is_configured_with(tmp_path: Path) -> None:
    with TestClient(create_app(HostConfig(root=tmp_path, processor_enabled=False))) as client:
        page = client.get("/schema")
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    # The Swagger page loads its scripts and styles from this server (invoke_host/docs_pages.py), nothing from afar.
    assert not re.findall(r"""(?:src|href)=["'](https?://[^/"']+)""", page.text)
    assert "script-src 'self' 'unsafe-inline';" in csp and "https:" not in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src" not in csp


def test_a_page_with_local_assets_gets_a_self_only_policy() -> None:
    from invoke_host.security.headers import asset_page_policy

    policy = asset_page_policy(scripts=["/schema/static/swagger-ui-bundle.js"], styles=["/schema/static/ui.css"])
    assert "https:" not in policy and "http:" not in policy
    assert "script-src 'self' 'unsafe-inline';" in policy and "style-src 'self' 'unsafe-inline';" in policy
