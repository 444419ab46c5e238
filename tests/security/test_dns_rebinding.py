"""DNS rebinding: a page on a foreign name rebound to 127.0.0.1 is turned away before any route runs.

Such a page is same-origin with itself, so its Origin always matches its Host; only the Host name
gives it away. Every route (plugin routes and the websocket included) must refuse names the server
was not told to answer to, and the cross-site check must compare the Origin's scheme too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.exceptions import WebSocketDisconnect
from litestar.routes import WebSocketRoute
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.security.real_server import RealServer, real_server

FOREIGN = "evil.example"
PAUSE = "/api/v1/queue/default/processor/pause"
STATUS = "/api/v1/queue/default/status"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """The default server: loopback only, no token (the case the rebinding attack targets)."""
    with real_server(tmp_path_factory.mktemp("rebinding") / "root") as running:
        yield running


def test_a_rebound_page_cannot_pause_the_real_server(server: RealServer) -> None:
    foreign = f"{FOREIGN}:{server.port}"
    reply = server.request("PUT", PAUSE, host=foreign, headers={"Origin": f"http://{foreign}"})
    assert reply.status == 421
    assert reply.json()["detail"] == (
        f"this server does not answer to the host name '{FOREIGN}' (the Host header); if you reach it under that "
        f"name, add it to allowed_hosts (INVOKE_HOST_ALLOWED_HOSTS={FOREIGN})"
    )
    # Nothing ran: the processor is still taking items.
    assert server.request("GET", STATUS).json()["processor"]["is_started"] is True
    # Reading is refused too: the rebound page must not see the queue, images or models.
    assert server.request("GET", STATUS, host=foreign).status == 421


def test_the_real_websocket_handshake_from_a_rebound_page_is_refused(server: RealServer) -> None:
    foreign = f"{FOREIGN}:{server.port}"
    handshake = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Origin": f"http://{foreign}",
    }
    refused = server.request("GET", "/ws", host=foreign, headers=handshake)
    assert refused.status == 421 and "allowed_hosts" in refused.json()["detail"]
    accepted = server.request("GET", "/ws", host=f"localhost:{server.port}",
                              headers={**handshake, "Origin": f"http://localhost:{server.port}"})
    assert accepted.status == 101


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "127.0.0.2", "[::1]", "console.localhost", "LOCALHOST."])
def test_loopback_names_reach_the_real_server(server: RealServer, name: str) -> None:
    reply = server.request("GET", STATUS, host=f"{name}:{server.port}")
    assert reply.status == 200, reply.body


def test_an_https_page_of_the_same_name_is_another_origin(server: RealServer) -> None:
    # The scheme is part of the origin: an https page on localhost may not write to the http server.
    here = f"127.0.0.1:{server.port}"
    reply = server.request("PUT", PAUSE, host=here, headers={"Origin": f"https://{here}"})
    assert reply.status == 403 and f"origin https://{here}" in reply.json()["detail"]
    assert server.request("PUT", "/api/v1/queue/other/processor/resume", host=here,
                          headers={"Origin": f"http://{here}"}).status == 200


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}:]+(?::(\w+))?\}", lambda m: "1" if m.group(1) == "int" else "x", path)


def _every_route(app: Litestar) -> list[tuple[str, str]]:
    routes = []
    for route in app.routes:
        if isinstance(route, WebSocketRoute):
            routes.append(("WEBSOCKET", _concrete(route.path)))
            continue
        routes.extend((method, _concrete(route.path)) for method in sorted(route.methods))
    return routes


@pytest.mark.parametrize("token", [None, "s3cret"])
def test_every_route_refuses_a_foreign_host_before_running(tmp_path: Path, token: str | None) -> None:
    app = create_app(HostConfig(root=tmp_path, processor_enabled=False, allowed_hosts=[], token=token))
    routes = _every_route(app)
    assert ("WEBSOCKET", "/ws") in routes and ("PUT", "/api/v1/queue/x/processor/pause") in routes
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    with TestClient(app, base_url=f"http://{FOREIGN}") as client:
        for method, path in routes:
            if method == "WEBSOCKET":
                with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(path, headers=auth):
                    pass
                assert refused.value.code == 4421, path
                continue
            reply = client.request(method, path, headers={**auth, "Origin": f"http://{FOREIGN}"})
            assert reply.status_code == 421, f"{method} {path} answered {reply.status_code}"
            assert "allowed_hosts" in reply.json()["detail"]
        assert client.blocking_portal.call(app.state.host.queue.is_paused, "x") is False


def test_configured_names_are_allowed_and_others_still_are_not(tmp_path: Path) -> None:
    config = HostConfig(root=tmp_path, processor_enabled=False, allowed_hosts=["invoke.lan", "Studio.Example."])
    with TestClient(create_app(config), base_url="http://invoke.lan:9090") as client:
        assert client.get(STATUS).status_code == 200
        assert client.get(STATUS, headers={"Host": "studio.example"}).status_code == 200
        assert client.get(STATUS, headers={"Host": "evil.invoke.lan"}).status_code == 421


def test_a_wildcard_allows_any_name(tmp_path: Path) -> None:
    config = HostConfig(root=tmp_path, processor_enabled=False, allowed_hosts=["*"])
    with TestClient(create_app(config), base_url=f"http://{FOREIGN}") as client:
        assert client.get(STATUS).status_code == 200


def test_which_names_a_bind_allows() -> None:
    from invoke_host.security import HostAllowList

    loopback = HostAllowList("127.0.0.1")
    assert loopback.allows("localhost:9090", "127.0.0.1")
    assert not loopback.allows("evil.example:9090", "127.0.0.1")
    assert not loopback.allows("localhost.evil.example", "127.0.0.1")
    assert loopback.allows(None, "127.0.0.1")  # HTTP/1.0 tools send no Host; browsers always do

    # A wildcard bind answers to the address a connection arrived on (an IP literal cannot be rebound) ...
    anywhere = HostAllowList("0.0.0.0")
    assert anywhere.allows("192.168.1.5:9090", "192.168.1.5")
    assert anywhere.allows("[fe80::1]:9090", "fe80::1")
    assert not anywhere.allows("192.168.1.6:9090", "192.168.1.5")
    # ... but never to a name, unless configured.
    assert not anywhere.allows("evil.example:9090", "192.168.1.5")
    assert HostAllowList("0.0.0.0", ["gpu-box.lan"]).allows("gpu-box.lan:9090", "192.168.1.5")

    # A bind to a named address answers to that name.
    assert HostAllowList("gpu-box.lan").allows("GPU-BOX.lan:9090", "192.168.1.5")
