"""Safe by default: a token guards every non-public route, and foreign web pages cannot change anything."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import TestClient
from pydantic import ValidationError

from invoke_host.app import create_app
from invoke_host.cli import main
from invoke_host.config import HostConfig
from invoke_host.security import PUBLIC_PATHS

TOKEN = "s3cret-token"
PACKS = ["good_pack"]


def _concrete(path: str) -> str:
    # Fill path parameters ({name:type} or {name}) with a value of the right shape.
    return re.sub(r"\{[^}:]+(?::(\w+))?\}", lambda m: "1" if m.group(1) == "int" else "x", path)


def _http_routes(app: Litestar) -> list[tuple[str, str]]:
    out = []
    for route in app.routes:
        methods = sorted(getattr(route, "methods", set()) - {"OPTIONS", "HEAD"})
        for method in methods:
            out.append((method, _concrete(route.path)))
    return out


def _is_public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


def test_every_non_public_route_requires_the_token(with_packs: Path) -> None:
    app = create_app(HostConfig(token=TOKEN, plugins_allow=PACKS), entry_points=True)
    routes = _http_routes(app)
    assert ("GET", "/api/v1/good/hello") in routes  # plugin-contributed routes are walked too
    assert ("POST", "/api/v1/good/echo") in routes
    with TestClient(app) as client:
        for method, path in routes:
            anonymous = client.request(method, path)
            if _is_public(path):
                assert anonymous.status_code != 401, (method, path)
                continue
            assert anonymous.status_code == 401, f"{method} {path} answered {anonymous.status_code} without a token"
            assert "access token" in anonymous.json()["detail"]
            wrong = client.request(method, path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            right = client.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert right.status_code != 401, (method, path)
        assert client.get("/api/v1/plugins", headers={"X-Invoke-Token": TOKEN}).status_code == 200


def test_public_routes_answer_without_a_token() -> None:
    with TestClient(create_app(HostConfig(token=TOKEN), entry_points=False)) as client:
        assert client.get("/api/v1/app/version").status_code == 200
        assert client.get("/schema/openapi.json").status_code == 200
        assert client.get("/api/v1/nodes").status_code == 401


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Origin": "https://evil.example"}, "origin https://evil.example"),
        ({"Origin": "null"}, "opaque origin"),
        ({"Sec-Fetch-Site": "cross-site"}, "cross-site"),
        ({"Origin": "http://testserver.local:8080"}, "origin"),
    ],
)
def test_cross_site_writes_are_refused(with_packs: Path, headers: dict[str, str], reason: str) -> None:
    app = create_app(HostConfig(plugins_allow=PACKS), entry_points=True)
    with TestClient(app) as client:
        response = client.post("/api/v1/good/echo", json={"a": 1}, headers=headers)
        assert response.status_code == 403
        assert reason in response.json()["detail"]
        # Reading is not a write: a GET from the same foreign page is not refused by this check.
        assert client.get("/api/v1/good/hello", headers=headers).status_code == 200


def test_same_origin_and_non_browser_writes_pass(with_packs: Path) -> None:
    app = create_app(HostConfig(plugins_allow=PACKS), entry_points=True)
    with TestClient(app) as client:
        assert client.post("/api/v1/good/echo", json={"a": 1}).json() == {"a": 1}
        browser = {"Origin": "http://testserver.local", "Sec-Fetch-Site": "same-origin"}
        same = client.post("/api/v1/good/echo", json={"a": 2}, headers=browser)
        assert same.status_code == 201 and same.json() == {"a": 2}


def test_configured_origin_may_write_and_gets_cors_headers(with_packs: Path) -> None:
    config = HostConfig(plugins_allow=PACKS, cors_origins=["https://ui.example"])
    with TestClient(create_app(config, entry_points=True)) as client:
        response = client.post("/api/v1/good/echo", json={"a": 3}, headers={"Origin": "https://ui.example"})
        assert response.status_code == 201
        assert response.headers["access-control-allow-origin"] == "https://ui.example"


def test_cors_is_off_unless_configured(with_packs: Path) -> None:
    with TestClient(create_app(HostConfig(plugins_allow=PACKS), entry_points=True)) as client:
        response = client.get("/api/v1/good/hello", headers={"Origin": "https://ui.example"})
    assert "access-control-allow-origin" not in response.headers


def test_wildcard_origin_with_credentials_cannot_be_configured() -> None:
    with pytest.raises(ValidationError, match="wildcard origin"):
        HostConfig(cors_origins=["*"], cors_allow_credentials=True)


def test_serving_beyond_loopback_needs_a_token_or_no_auth() -> None:
    with pytest.raises(ValueError, match="--no-auth"):
        HostConfig(host="0.0.0.0").check_bind()
    HostConfig(host="0.0.0.0", token=TOKEN).check_bind()
    HostConfig(host="0.0.0.0", no_auth=True).check_bind()
    HostConfig(host="127.0.0.1").check_bind()
    HostConfig(host="::1").check_bind()

    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 2
    assert "exposes the server to the network" in result.output
