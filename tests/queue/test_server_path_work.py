"""What the server path does for a graph besides the engine's own work, cut down without changing an answer: the
enqueue body read, the batch's size against ``max_batch_bytes``, the item view's JSON, the claimed item's state
built off the event loop, the node event publisher's edge maps built only for an event (issue #11)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import invoke_core_nodes.plugin as core_nodes_plugin
import pytest
from invoke_core_nodes.math import AddInvocation
from invoke_sdk.session_queue import QueueItemSummary
from litestar.testing import TestClient
from pydantic import ValidationError

import invoke_host.queue.processor as processor_module
from invoke_host.api.queue import _ENQUEUE_BODY, _read_enqueue_body
from invoke_host.engine import GraphExecutionState, NodeStarted
from invoke_host.events import EventBus
from invoke_host.graph import parse_graph
from invoke_host.host import build_host
from invoke_host.limits import Limits
from invoke_host.queue.batch import Batch, BatchError, prepare_batch, prepare_items
from invoke_host.queue.item_view import QueueItemView, item_view
from invoke_host.queue.node_events import NodeEventPublisher
from tests.queue.conftest import graph, make_app
from tests.waiting import wait_until

Q = "/api/v1/queue/default"


def _outcome(read: Any, raw: bytes) -> str:
    # As text: NaN is not equal to itself, its repr is; the repr also tells -0.0 from 0 and 1 from True.
    try:
        return repr(read(raw).model_dump())
    except ValidationError as exc:
        return repr(exc.errors(include_url=False))


@pytest.mark.parametrize("raw", [
    b'{"batch": {"batch_id": "b", "graph": {"nodes": {"a": {"type": "add", "b": NaN}}}, "runs": 2}}',
    b'{"batch": {"batch_id": "b", "graph": {"nodes": {"a": {"b": 123456789012345678901234567890, "c": 1e400}}}}}',
    b'{"batch": {"batch_id": "b", "graph": {"nodes": {"a": {"s": "caf\\u00e9 \\ud83d\\ude00", "t": [-0, -0.0]}}}}}',
    b'{"batch": {"batch_id": "b", "graph": {}, "workflow": {"nodes": []}, "origin": "o"}, "prepend": true}',
    b'{"batch": {"batch_id": "b", "graph": {}, "data": [[{"node_path": "a", "field_name": "b", "items": [1, 2]}]]}}',
    b'{"batch": {"graph": {}, "runs": true}}',
    b'{"batch": {"graph": {}, "runs": "2"}}',
    b'{"batch": {"graph": {}, "runs": 0}}',
    b'{"batch": {"graph": {}}, "prepend": 1}',
    b'{"batch": {"graph": {}, "extra": 1}}',
    b'{"batch": {"graph": []}}',
    b'{"batch": {"graph": {}, "data": [[]]}}',
    b'{"batch": {"graph": {"nodes": []}}}',
    b'{"batch": {"graph": {"s": "\\ud800"}}}',
    b'{"batch": {"graph": {}',
    b'[]',
    b'',
])
def test_the_enqueue_body_is_read_exactly_as_validate_json_reads_it(raw: bytes) -> None:
    assert _outcome(_read_enqueue_body, raw) == _outcome(_ENQUEUE_BODY.validate_json, raw)


def test_a_batch_without_data_is_held_to_max_batch_bytes_by_the_size_its_items_store() -> None:
    registry = build_host(plugins=[("core_nodes", core_nodes_plugin)], entry_points=False).registry
    batch = Batch.model_validate({
        "graph": {"nodes": {"s": {"type": "string", "value": "caf\u00e9"}, "n": {"type": "add", "a": 1}}},
        "runs": 3, "workflow": {"name": "w\u00e9"},
    })
    _, items = prepare_items("q", batch, registry, max_batch_size=10)
    stored = sum(len(item.session_json.encode()) for item in items)
    assert len(items) == 3 and len({len(item.session_json) for item in items}) == 1

    def limits(max_batch_bytes: int) -> Limits:
        return Limits(**{**Limits.from_settings().__dict__, "max_batch_bytes": max_batch_bytes})

    assert len(prepare_batch("q", batch, registry, 10, limits(stored)).items) == 3
    with pytest.raises(BatchError) as refused:
        prepare_batch("q", batch, registry, 10, limits(stored - 1))
    assert refused.value.status_code == 413, refused.value.message
    assert "max_batch_bytes" in refused.value.message and str(stored) in refused.value.message, refused.value.message


def test_the_item_view_is_the_models_json(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with TestClient(app) as client:
        r = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph(a=3, b=4), "origin": "caf\u00e9",
                                                              "workflow": {"name": "w\u00e9"}}})
        assert r.status_code == 201, r.text
        [item_id] = r.json()["item_ids"]
        got = client.get(f"{Q}/i/{item_id}")
        assert got.status_code == 200 and got.headers["content-type"].startswith("application/json")

        async def expected() -> dict[str, Any]:
            queue = app.state.host.queue
            view: QueueItemView = await item_view(queue, await queue.get(item_id))
            return view.model_dump(mode="json")

        want = client.blocking_portal.call(expected)
        assert got.json() == want
        assert want["session"]["graph"]["nodes"]["add"]["b"] == 4
        assert json.loads(want["session"]["workflow"]) == {"name": "w\u00e9"}


def test_a_claimed_items_state_is_built_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built_on: list[tuple[str, bool]] = []
    state_for = processor_module.SessionProcessor._state_for

    def recorded(self: Any, item: Any, *held: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        built_on.append((threading.current_thread().name, on_loop))
        return state_for(self, item, *held)

    monkeypatch.setattr(processor_module.SessionProcessor, "_state_for", recorded)
    with TestClient(make_app(tmp_path, processor_enabled=True)) as client:
        r = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": graph(a=3, b=4)}})
        [item_id] = r.json()["item_ids"]
        wait_until(lambda: client.get(f"{Q}/i/{item_id}").json()["status"] == "completed", "the item completes")
        results = client.get(f"{Q}/i/{item_id}/results").json()["items"]
    assert [row["output"]["value"] for row in results] == [7]
    assert len(built_on) == 1 and built_on[0][1] is False, built_on


@pytest.mark.parametrize("nodes", [
    {"a": {"type": []}}, {"a": {"type": {"x": 1}}}, {"a": 5}, {"a": {"type": "no_such_node"}}, [1, 2],
])
def test_a_malformed_graph_is_refused_before_it_is_stored(client: TestClient[Any], nodes: Any) -> None:
    r = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": {"nodes": nodes, "edges": []}}})
    assert r.status_code == 422, r.text
    assert client.get(f"{Q}/list").json()["items"] == []


class _Recorder:
    """An event sink that wants every event, encoded."""

    name = "recorder"

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def wants(self, event_name: str) -> bool:
        return True

    def deliver(self, event: Any) -> None:
        raise AssertionError("node events come encoded")

    def deliver_encoded(self, event: Any) -> None:
        self.messages.append(event.message)


@pytest.mark.parametrize("subscribed", [False, True])
def test_a_node_event_publisher_walks_the_graphs_edges_only_once_it_publishes(subscribed: bool) -> None:
    host = build_host(plugins=[("core_nodes", core_nodes_plugin)], entry_points=False)
    parsed = parse_graph(host.registry, {
        "nodes": {"base": {"type": "add", "a": 1, "b": 2}, "second": {"type": "add", "b": 10}},
        "edges": [{"source": {"node_id": "base", "field": "value"},
                   "destination": {"node_id": "second", "field": "a"}}],
    })
    now = datetime(2026, 12, 2, tzinfo=UTC)
    item = QueueItemSummary(item_id=1, queue_id="q", batch_id="b", session_id="s", status="in_progress", priority=0,
                            created_at=now, updated_at=now)
    sink = _Recorder()
    bus = EventBus([sink] if subscribed else [])
    loop = asyncio.new_event_loop()
    loop.run_until_complete(bus.start())
    try:
        publish = NodeEventPublisher(bus, item, GraphExecutionState(host.registry, parsed))
        assert "_edge_inputs" not in vars(publish) and "_exclude" not in vars(publish)  # nothing walked at the claim
        publish(NodeStarted("s", "second", "second", "add", invocation=AddInvocation(id="second", a=3, b=10)))
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.run_until_complete(bus.stop())
        loop.close()
    # Walked only for an event some sink takes; the input fed by the edge is left out of it, as always.
    assert ("_edge_inputs" in vars(publish)) is subscribed
    assert [json.loads(m)["data"]["invocation"] for m in sink.messages] == (
        [{"id": "second", "is_intermediate": False, "use_cache": True, "b": 10, "type": "add"}] if subscribed else [])
