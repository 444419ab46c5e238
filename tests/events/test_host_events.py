"""The host's own events (queue, nodes, images) are in the OpenAPI document; the sinks arrive as a plugin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import invoke_core_events.plugin as core_events_plugin
from invoke_sdk.images import IMAGE_EVENTS
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig


def test_image_events_are_host_events_in_the_openapi_document(tmp_path: Path) -> None:
    app = create_app(HostConfig(root=tmp_path), entry_points=False)
    with TestClient(app) as client:
        schemas: dict[str, Any] = client.get("/schema/openapi.json").json()["components"]["schemas"]
    mapping = schemas["AnyEventMessage"]["discriminator"]["mapping"]
    for cls in IMAGE_EVENTS:
        assert f"Event.{cls.event_name}" in schemas
        assert mapping[cls.event_name] == f"#/components/schemas/EventMessage.{cls.event_name}"


def test_the_websocket_and_log_sinks_come_from_the_core_events_plugin(tmp_path: Path) -> None:
    bare = create_app(HostConfig(root=tmp_path / "a", processor_enabled=False), entry_points=False)
    # No plugin, no sinks but the host's own: the caches hear of deleted images and changed models there.
    assert [s.name for s in bare.state.host.events.sinks] == ["output_cache", "model_changes"]
    assert "/ws" not in {r.path for r in bare.routes}
    limits = {
        "ws_client_buffer": 7, "ws_client_buffer_bytes": 1000, "ws_max_message_bytes": 300, "ws_close_timeout": 0.25
    }
    app = create_app(HostConfig(root=tmp_path / "b", **limits), [("core_events", core_events_plugin)],
                     entry_points=False)
    sink = app.state.host.events.sink("websocket")
    assert sink is not None
    assert (sink.buffer, sink.buffer_bytes, sink.max_message_bytes, sink.close_timeout) == (  # type: ignore[attr-defined]
        7, 1000, 300, 0.25
    )
    assert app.state.host.events.sink("log") is not None
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q"}))
        assert ws.receive_json() == {"event": "subscribed", "data": {"room": "queue", "queue_id": "q"}}
