"""A graph is validated once on its way through the queue: at enqueue, not again when claimed, unless the host
that claims it has other node types than the one that validated it."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import invoke_core_events.plugin as core_events_plugin
import invoke_core_nodes.plugin as core_nodes_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import pytest
from invoke_sdk import BaseInvocation, BaseInvocationOutput, InputField, OutputField, hookimpl, invocation
from invoke_sdk import invocation_output as output
from invoke_sdk.hookspecs import RegisterInvocation
from invoke_sdk.session_queue import BatchRecord, NewQueueItem
from invoke_sqlite_storage import SqliteBackend
from litestar import Litestar
from litestar.testing import TestClient

import invoke_host.graph.validation as validation
import invoke_host.queue.processor as processor_module
from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.engine import NodeServices
from invoke_host.graph import GraphBase, parse_graph, registry_fingerprint
from invoke_host.host import build_host
from invoke_host.queue.held_graphs import HeldGraphs
from invoke_host.queue.processor import SessionProcessor
from tests.waiting import wait_until

Q = "/api/v1/queue/default"
CORE = [("core_nodes", core_nodes_plugin), ("sqlite_storage", sqlite_plugin), ("core_events", core_events_plugin)]


def _edge(a: str, b: str) -> dict[str, Any]:
    return {"source": {"node_id": a, "field": "value"}, "destination": {"node_id": b, "field": "a"}}


CHAIN = {"nodes": {"one": {"type": "add", "a": 1, "b": 2}, "two": {"type": "add", "b": 10}},
         "edges": [_edge("one", "two")]}
CYCLE = {"nodes": {"one": {"type": "add", "b": 2}, "two": {"type": "add", "b": 10}},
         "edges": [_edge("one", "two"), _edge("two", "one")]}


@pytest.fixture
def structure_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times a graph's structure was checked (each call records the graph's node count)."""
    calls: list[int] = []
    check = validation._check

    def counted(registry: Any, nodes: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(len(nodes))
        return check(registry, nodes, *args, **kwargs)

    monkeypatch.setattr(validation, "_check", counted)
    return calls


def _finished(client: TestClient[Litestar], item_id: int) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def done() -> bool:
        found.update(client.get(f"{Q}/i/{item_id}").json())
        return found["status"] in ("completed", "failed", "canceled")

    wait_until(done, f"queue item {item_id} to finish", timeout=30)
    return found


def test_an_enqueued_graph_is_checked_once_and_runs(tmp_path: Path, structure_checks: list[int]) -> None:
    with TestClient(create_app(HostConfig(root=tmp_path), CORE, entry_points=False)) as client:
        r = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": CHAIN}})
        assert r.status_code == 201, r.text
        assert structure_checks == [2]
        item = _finished(client, r.json()["item_ids"][0])
        results = client.get(f"{Q}/i/{item['item_id']}", params={"include": "session"}).json()["session"]["results"]
    assert item["status"] == "completed", item.get("error_message")
    assert structure_checks == [2]  # claimed and run without a second check
    assert sorted(out["value"] for out in results.values()) == [3, 13]


def _store_directly(root: Path, sessions: list[dict[str, Any]]) -> None:
    """Queue items written as another host would have (no check by this one), before this host starts."""

    async def write() -> None:
        backend = SqliteBackend(root / "databases" / "invoke.db")
        await backend.start()
        try:
            record = BatchRecord(batch_id="older", queue_id="default", requested=len(sessions))
            items = [NewQueueItem(session_id=s["id"], session_json=json.dumps(s)) for s in sessions]
            await backend.session_queue.enqueue(record, items, prepend=False)
        finally:
            await backend.stop()

    asyncio.run(write())


@pytest.mark.parametrize("mark", [None, "another host's node types"], ids=["no fingerprint", "other fingerprint"])
def test_an_item_stored_by_another_host_is_checked_again(tmp_path: Path, structure_checks: list[int],
                                                         mark: str | None) -> None:
    sessions = []
    for graph in (CYCLE, CHAIN):
        session: dict[str, Any] = {"id": uuid.uuid4().hex, "batch_id": "older", "graph": graph}
        if mark is not None:
            session["validated_with"] = mark
        sessions.append(session)
    _store_directly(tmp_path, sessions)
    with TestClient(create_app(HostConfig(root=tmp_path), CORE, entry_points=False)) as client:
        bad, good = (_finished(client, i) for i in (1, 2))
    assert bad["status"] == "failed" and bad["error_type"] == "GraphValidationError"
    assert "part of a cycle" in bad["error_message"] and "could not be built" in bad["error_message"]
    assert good["status"] == "completed", good.get("error_message")
    assert structure_checks == [2, 2]


@output("fp_output")
class FpOutput(BaseInvocationOutput):
    value: int = OutputField()


@invocation("fp_node", version="1.0.0")
class FpNode(BaseInvocation):
    a: int = InputField(default=0)

    def invoke(self, context: Any) -> FpOutput:
        return FpOutput(value=self.a)


@invocation("fp_node", version="1.1.0")
class FpNodeNext(FpNode):
    def invoke(self, context: Any) -> FpOutput:
        return FpOutput(value=self.a + 1)


class FpPack:
    def __init__(self, node: type[BaseInvocation]) -> None:
        self.node = node

    @hookimpl
    def register_invocations(self, register: RegisterInvocation) -> None:
        register(self.node)


def test_a_fingerprint_names_the_node_types_their_versions_and_packs() -> None:
    def fingerprint(*plugins: Any) -> str:
        host = build_host(plugins=list(plugins), entry_points=False)
        assert not any(p.refused or p.error for p in host.registry.plugins)
        return registry_fingerprint(host.registry)

    core = ("core_nodes", core_nodes_plugin)
    base = fingerprint(core, ("fp", FpPack(FpNode)))
    assert fingerprint(core, ("fp", FpPack(FpNode))) == base  # another host, the same node types
    assert fingerprint(core, ("fp", FpPack(FpNodeNext))) != base  # a node's version changed
    assert fingerprint(core, ("other_name", FpPack(FpNode))) != base  # another pack gives it
    assert fingerprint(core) != base  # a pack is missing


def test_batch_data_for_an_input_an_edge_feeds_is_refused(tmp_path: Path) -> None:
    app = create_app(HostConfig(root=tmp_path, processor_enabled=False), CORE, entry_points=False)
    with TestClient(app) as client:
        # The first item's value equals the default, so only checking each item (not the graph) catches it.
        data = [[{"node_path": "two", "field_name": "a", "items": [0, 5]}]]
        r = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": CHAIN, "data": data}})
        assert r.status_code == 422, r.text
        assert "input 'a' of node 'two', which is fed by an edge" in r.json()["detail"]
        assert r.json()["extra"]["errors"][0] == {"node_path": "two", "field_name": "a",
                                                   "message": "the input is fed by an edge"}


@pytest.fixture
def graph_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which claimed items the processor rebuilt from their stored session (by the first node's ``a``)."""
    loads: list[str] = []
    load = processor_module.load_validated_graph

    def counted(registry: Any, data: Any) -> Any:
        graph = load(registry, data)
        loads.append(str(graph.nodes["one"].a))
        return graph

    monkeypatch.setattr(processor_module, "load_validated_graph", counted)
    return loads


def _outputs(client: TestClient[Litestar], item_id: int) -> dict[str, int]:
    item = _finished(client, item_id)
    assert item["status"] == "completed", item.get("error_message")
    session = client.get(f"{Q}/i/{item_id}", params={"include": "session"}).json()["session"]
    return {source: session["results"][ids[0]]["value"] for source, ids in session["source_results"].items()}


def test_an_item_this_host_enqueued_runs_the_graph_validated_at_enqueue(tmp_path: Path,
                                                                        graph_loads: list[str]) -> None:
    data = [[{"node_path": "one", "field_name": "a", "items": [5, 7]}]]
    with TestClient(create_app(HostConfig(root=tmp_path), CORE, entry_points=False)) as client:
        runs = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": CHAIN, "runs": 2}}).json()["item_ids"]
        assert [_outputs(client, i) for i in runs] == [{"one": 3, "two": 13}] * 2
        # The first item ran the graph validated at enqueue; the second, which must not share its node objects,
        # was loaded from storage.
        assert graph_loads == ["1"]
        assert len(client.app.state.host.queue.held_graphs) == 0  # taken at claim
        with_data = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": CHAIN, "data": data}}).json()
        assert [_outputs(client, i) for i in with_data["item_ids"]] == [{"one": 7, "two": 17}, {"one": 9, "two": 19}]
    # Only the first item's graph (its value written in) is the one validated; the second comes from storage.
    assert graph_loads == ["1", "7"]


@pytest.mark.parametrize("config", [{"max_held_graph_nodes": 0}, {"processor_enabled": False}],
                         ids=["bound 0", "API node"])
def test_without_held_graphs_a_claimed_item_is_loaded_from_storage(tmp_path: Path, graph_loads: list[str],
                                                                    config: dict[str, Any]) -> None:
    with TestClient(create_app(HostConfig(root=tmp_path, **config), CORE, entry_points=False)) as client:
        item_id = client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": CHAIN}}).json()["item_ids"][0]
        queue = client.app.state.host.queue
        assert len(queue.held_graphs) == 0
        if not config.get("processor_enabled", True):
            # An API node holds nothing: another process claims. Run the item here to see it load from storage.
            processor = SessionProcessor(queue.registry, queue, client.app.state.host.events,
                                         NodeServices.default(HostConfig(root=tmp_path)))
            client.blocking_portal.call(processor.start)
            try:
                assert _outputs(client, item_id) == {"one": 3, "two": 13}
            finally:
                client.blocking_portal.call(processor.stop)
        else:
            assert _outputs(client, item_id) == {"one": 3, "two": 13}
    assert graph_loads == ["1"]


def _graph(nodes: int) -> GraphBase:
    host = build_host(plugins=[("core_nodes", core_nodes_plugin)], entry_points=False)
    graph = {"nodes": {f"n{i}": {"type": "add", "a": i} for i in range(nodes)}, "edges": []}
    return parse_graph(host.registry, graph)


def test_held_graphs_count_a_shared_graph_once_and_drop_the_oldest_past_the_bound() -> None:
    held = HeldGraphs(max_nodes=20)
    shared, other = _graph(8), _graph(5)
    held.hold(shared, ["a", "b", "c"])
    assert (len(held), held.cost) == (3, 8 + 3)
    held.hold(other, ["d"])
    assert (len(held), held.cost) == (4, 8 + 5 + 4)
    held.hold(_graph(3), ["e"])  # 8 + 5 + 3 + 5 = 21 > 20: the oldest session goes, its graph stays for b and c
    assert held.take("a") is None
    taken = held.take("b")
    assert taken is not None and taken.graph is shared and taken.workflow is None and held.take("b") is None
    assert (len(held), held.cost) == (3, 8 + 5 + 3 + 3)
    held.hold(_graph(20), ["f"])  # 21 on its own: never held, nothing pushed out
    assert (len(held), held.take("f")) == (3, None)
    assert getattr(held.take("c"), "graph", None) is shared
    assert (len(held), held.cost) == (2, 5 + 3 + 2)
    assert HeldGraphs(max_nodes=0).take("x") is None
    nothing = HeldGraphs(max_nodes=0)
    nothing.hold(_graph(1), ["x"])
    assert len(nothing) == 0
