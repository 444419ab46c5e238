"""Two real hosts on one PostgreSQL database: a websocket client of the API node sees the items the other node runs,
as its own clients do, in the same order, and the running node's clients get each event once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import invoke_core_events.plugin
import invoke_core_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_postgres_events.plugin
import invoke_postgres_storage.plugin
from invoke_postgres_events.relay_sink import PostgresEventRelay
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.host import Host, NodeShape, build_host
from tests.waiting import wait_until

# Two nodes of one deployment: one PostgreSQL database holds their queue and carries their events.
PLUGINS = [invoke_postgres_storage.plugin, invoke_local_file_storage.plugin, invoke_core_events.plugin,
           invoke_core_nodes.plugin, invoke_postgres_events.plugin]

CHAIN = {
    "nodes": {
        "one": {"id": "one", "type": "add", "a": 1, "b": 2},
        "two": {"id": "two", "type": "add", "b": 10},
        "big": {"id": "big", "type": "string", "value": "x" * 20_000},  # over NOTIFY's limit: the outbox
    },
    "edges": [{"source": {"node_id": "one", "field": "value"}, "destination": {"node_id": "two", "field": "a"}}],
}


def _host(root: Path, url: str, shape: NodeShape) -> Host:
    return build_host(HostConfig(root=root, database_url=url), PLUGINS, entry_points=False, shape=shape)


def _until_done(ws: Any, items: int) -> list[dict[str, Any]]:
    """Every message up to the last item's final status (each receive bounded: a lost event fails, not hangs)."""
    messages: list[dict[str, Any]] = []
    done = 0
    while done < items:
        message = ws.receive_json(timeout=20)
        messages.append(message)
        if message["event"] == "queue_item_status_changed" and message["data"]["status"] == "completed":
            done += 1
    return messages


def _key(message: dict[str, Any]) -> tuple[Any, ...]:
    data = message["data"]
    return (message["event"], data.get("item_id"), data.get("status"), data.get("invocation_id"),
            json.dumps(data.get("result"), sort_keys=True))


def test_an_api_node_client_sees_another_nodes_items_in_order(tmp_path: Path, postgres_url: str) -> None:
    runner = _host(tmp_path / "a", postgres_url, NodeShape.ALL_IN_ONE)
    api = _host(tmp_path / "b", postgres_url, NodeShape.API)
    with TestClient(create_app(host=runner)) as a, TestClient(create_app(host=api)) as b, \
            a.websocket_connect("/ws") as on_a, b.websocket_connect("/ws") as on_b:
        for ws in (on_a, on_b):
            ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q"}))
            assert ws.receive_json(timeout=20)["event"] == "subscribed"
        # The runner sends per-node events once it has read that B's client wants them (interest table).
        sender = runner.events.sink(PostgresEventRelay.name)
        assert isinstance(sender, PostgresEventRelay)
        wait_until(lambda: sender.wants("invocation_complete") and sender.interest is not None
                   and sender.interest.others is not None and "invocation_complete" in sender.interest.others,
                   "the runner to hear that B's client is subscribed", timeout=20)
        response = a.post("/api/v1/queue/q/enqueue_batch", json={"batch": {"graph": CHAIN, "runs": 2}})
        assert response.status_code == 201, response.text
        seen_on_a, seen_on_b = _until_done(on_a, 2), _until_done(on_b, 2)
        relay = api.events.sink(PostgresEventRelay.name)
        assert isinstance(relay, PostgresEventRelay) and relay.listener is not None
        delivered = relay.listener.delivered
    assert [_key(m) for m in seen_on_b] == [_key(m) for m in seen_on_a]
    assert delivered == len(seen_on_b)
    events = [m["event"] for m in seen_on_a]
    assert events[0] == "batch_enqueued"
    # Two items of three nodes, each started and completed, once each on the runner's own client.
    assert events.count("invocation_complete") == 6 and events.count("invocation_started") == 6
    big = [m for m in seen_on_b if m["event"] == "invocation_complete" and m["data"]["invocation_source_id"] == "big"]
    assert [m["data"]["result"]["value"] for m in big] == ["x" * 20_000] * 2
