"""Progress summaries (``"node_events": "progress"`` at subscribe): per item, counts instead of node events.

Over a real server and real websocket clients: a progress client gets no ``invocation_started`` or
``invocation_complete`` at all; its ``invocation_progress_summary`` messages add up exactly to the nodes the item
ran, each summary comes before the item's status change, and every other event is what a full client gets, in the
same order. Whether the host wrote the summaries from its counts or one per node (a sink that needs models listening).
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from invoke_core_events.websocket_sink import WebSocketSink
from invoke_sdk.events import (
    BRIEF_EVENTS,
    PROGRESS_SUMMARY_EVENT,
    EncodedEventRun,
    InvocationProgressSummaryEvent,
    ProgressEventRunSink,
    QueueClearedEvent,
    progress_summary_message,
)
from litestar.testing import TestClient

from invoke_host.events import EventBus
from invoke_host.events.progress import ProgressWriter
from tests.events.test_brief_node_events import ITEMS, BriefRunSink, _app, _read
from tests.queue.conftest import graph, make_app
from tests.queue.live_server import live_server
from tests.waiting import async_wait_until, wait_until

NODES = 2 * ITEMS + 1
"""Node executions of the brief test's graph: the range, the iterate per item and the add per item."""


def _summaries(stream: list[str]) -> list[dict[str, Any]]:
    return [m["data"] for m in map(json.loads, stream) if m["event"] == PROGRESS_SUMMARY_EVENT]


def _others(stream: list[str]) -> list[dict[str, Any]]:
    """Every message but node events and summaries, without the timestamps (the same events, written once each)."""
    return [m for m in map(json.loads, stream) if m["event"] not in BRIEF_EVENTS | {PROGRESS_SUMMARY_EVENT}]


@pytest.mark.parametrize("typed", [False, True], ids=["counted by the host", "one per node, typed events"])
def test_progress_clients_get_no_node_events_and_summaries_that_add_up_to_the_nodes_run(
        tmp_path: Path, typed: bool) -> None:
    app = _app(tmp_path, typed=typed)
    with live_server(app) as base:
        forms: list[tuple[bool, str | None]] = [(True, None), (False, "progress"), (True, "progress")]
        full, *progress = asyncio.run(_read(base.replace("http", "ws") + "/ws", base, forms, app))
    completions = [json.loads(m)["data"] for m in full if json.loads(m)["event"] == "invocation_complete"]
    assert len(completions) == NODES
    for stream in progress:
        assert not [m for m in map(json.loads, stream) if m["event"] in BRIEF_EVENTS]
        summaries = _summaries(stream)
        assert summaries, "a progress client got no summary"
        assert sum(s["started"] for s in summaries) == NODES
        assert sum(s["completed"] for s in summaries) == NODES
        assert sum(s["cached"] for s in summaries) == 0
        items = {(c["queue_id"], c["item_id"]) for c in completions}
        assert {(s["queue_id"], s["item_id"]) for s in summaries} == items
        assert all(s["started"] + s["completed"] > 0 for s in summaries)
        # A summary names the last node it saw completed; the item's last summary names the item's last node.
        last = [s for s in summaries if s["completed"]][-1]
        assert (last["invocation_source_id"], last["invocation_type"]) == (
            completions[-1]["invocation_source_id"], completions[-1]["invocation_type"])
        assert all(s["invocation_source_id"] is None and s["invocation_type"] is None
                   for s in summaries if not s["completed"])
        # Every other event is the full client's, in the same order, and the item finished after its last summary.
        assert _others(stream) == _others(full)
        kinds = [json.loads(m)["event"] for m in stream]
        assert kinds[-1] == "queue_item_status_changed"
        assert max(i for i, k in enumerate(kinds) if k == PROGRESS_SUMMARY_EVENT) < len(kinds) - 1
        for summary in summaries:
            InvocationProgressSummaryEvent.model_validate(summary)
    if typed:
        # Each node event was emitted alone (a sink needed its model), so each closed its window: one per node event.
        assert all(len(_summaries(stream)) == 2 * NODES for stream in progress)
    else:
        # Counted per delivery: fewer summaries than node events (at most one per node event even if every window
        # held one; the item's summaries never outnumber its node events).
        assert all(len(_summaries(stream)) <= 2 * NODES for stream in progress)
        assert sum(map(len, progress[1])) < sum(map(len, full)) / 2


def test_with_only_progress_clients_the_host_writes_no_node_message(tmp_path: Path) -> None:
    app = _app(tmp_path)
    with live_server(app) as base:
        [stream] = asyncio.run(_read(base.replace("http", "ws") + "/ws", base, [(True, "progress")], app))
        bus = app.state["host"].events
        wait_until(lambda: not bus.wants_progress("invocation_started"), "the client to be forgotten")
    assert bus.wanted_forms("invocation_complete") == (0, False)
    summaries = _summaries(stream)
    assert sum(s["started"] for s in summaries) == sum(s["completed"] for s in summaries) == NODES
    assert not [m for m in map(json.loads, stream) if m["event"] in BRIEF_EVENTS]


def test_progress_is_a_choice_at_subscribe_and_full_or_brief_goes_back(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client, client.websocket_connect("/ws") as ws:
        sink = client.app.state["host"].events.sink(WebSocketSink.name)
        assert isinstance(sink, WebSocketSink) and isinstance(sink, ProgressEventRunSink)
        ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q", "node_events": "progres"}))
        reply = ws.receive_json()
        assert reply["event"] == "error" and '"progress"' in reply["data"]["message"]
        assert not sink.wants_progress("invocation_started")
        ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q", "node_events": "progress"}))
        assert ws.receive_json() == {"event": "subscribed", "data": {"room": "queue", "queue_id": "q"}}
        assert sink.wants_progress("invocation_complete") and not sink.wants_progress("queue_cleared")
        assert not sink.wants_full("invocation_started") and not sink.wants_brief("invocation_started")
        assert sink.wants_full("queue_cleared")
        ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q", "node_events": "brief"}))
        assert ws.receive_json()["event"] == "subscribed"
        assert sink.wants_brief("invocation_started") and not sink.wants_progress("invocation_started")


class ProgressRunSink(BriefRunSink):
    """Takes full, brief and progress runs, and records which was which."""

    def wants_progress(self, event_name: str) -> bool:
        return event_name in BRIEF_EVENTS

    def deliver_progress_run(self, run: EncodedEventRun) -> None:
        self.calls.append(("progress", run.messages()))


_PART = b',"invocation_source_id":"n \\"\xc3\xa9\\"","invocation_type":"t"'


async def test_a_window_counts_until_the_loop_takes_it_and_another_event_closes_it() -> None:
    sink = ProgressRunSink()
    bus = EventBus([sink])
    await bus.start()
    assert bus.wants_progress("invocation_started") and not bus.wants_progress("queue_cleared")
    writer = ProgressWriter(bus, "queue:q", b',"queue_id":"q","item_id":7')
    emitted = threading.Event()

    def node_thread() -> None:
        writer.started()
        writer.started()
        writer.completed(_PART, cached=True)
        bus.emit(QueueClearedEvent.build("q"))  # closes the open window: what is counted next is in another
        emitted.set()
        writer.completed(_PART, cached=False)

    thread = threading.Thread(target=node_thread)
    thread.start()
    thread.join()
    await async_wait_until(lambda: len(sink.calls) == 3, "two windows and the event between them")
    assert [kind for kind, _ in sink.calls] == ["progress", "deliver", "progress"]
    first, second = (json.loads(messages[0]) for kind, messages in sink.calls if kind == "progress")
    assert first["event"] == second["event"] == PROGRESS_SUMMARY_EVENT
    assert {k: v for k, v in first["data"].items() if k != "timestamp"} == {
        "queue_id": "q", "item_id": 7, "started": 2, "completed": 1, "cached": 1,
        "invocation_source_id": 'n "é"', "invocation_type": "t"}
    assert {k: v for k, v in second["data"].items() if k != "timestamp"} == {
        "queue_id": "q", "item_id": 7, "started": 0, "completed": 1, "cached": 0,
        "invocation_source_id": 'n "é"', "invocation_type": "t"}
    await bus.stop()
    assert not bus.wants_progress("invocation_started")
    writer.started()  # a stopped bus takes nothing, and the writer keeps nothing open
    assert writer.open is None


def test_a_summary_of_one_node_event_that_came_alone() -> None:
    complete = ('{"event":"invocation_complete","data":{"timestamp":1.5,"queue_id":"q","item_id":3,"batch_id":"b",'
                '"session_id":"s","invocation_id":"n#0","invocation_source_id":"n é","invocation_type":"t",'
                '"invocation":{"id":"n#0","type":"t"},"result":{"value":1,"type":"o"},"cached":true}}')
    summary = progress_summary_message(complete)
    assert summary is not None
    assert json.loads(summary) == {"event": PROGRESS_SUMMARY_EVENT, "data": {
        "timestamp": 1.5, "queue_id": "q", "item_id": 3, "started": 0, "completed": 1, "cached": 1,
        "invocation_source_id": "n é", "invocation_type": "t"}}
    started = progress_summary_message(complete.replace("invocation_complete", "invocation_started"))
    assert started is not None and json.loads(started)["data"]["started"] == 1
    assert json.loads(started)["data"]["invocation_source_id"] is None
    assert progress_summary_message('{"event":"queue_cleared","data":{"queue_id":"q","timestamp":1}}') is None


def test_the_document_describes_progress_and_real_progress_frames_follow_it(tmp_path: Path) -> None:
    app = make_app(tmp_path, processor_enabled=True)
    with TestClient(app) as client:
        doc = client.get("/schema/openapi.json").json()

        def validator(name: str) -> Any:
            return jsonschema_rs.Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                                       "components": doc["components"]})

        client_message, frame = validator("WsClientMessage"), validator("WsServerFrame")
        subscribe = {"subscribe": "queue", "queue_id": "q1", "batch": True, "node_events": "progress"}
        assert client_message.is_valid(subscribe)
        with client.websocket_connect("/ws") as ws:
            ws.send_text(json.dumps(subscribe))
            frames = [ws.receive_json()]
            assert client.post("/api/v1/queue/q1/enqueue_batch", json={"batch": {"graph": graph()}}).status_code == 201
            while not any(m["event"] == "queue_item_status_changed" and m["data"]["status"] in ("completed", "failed")
                          for m in frames[-1]):
                frames.append(ws.receive_json())
    messages = [m for f in frames for m in f]
    summaries = [m for m in messages if m["event"] == PROGRESS_SUMMARY_EVENT]
    assert sum(s["data"]["completed"] for s in summaries) == 1
    assert not [m for m in messages if m["event"] in BRIEF_EVENTS]
    for received in frames:
        assert frame.is_valid(received), received
    summary = summaries[-1]
    assert not frame.is_valid({**summary, "data": {**summary["data"], "started": "one"}})
    assert not frame.is_valid({**summary, "data": {**summary["data"], "extra": 1}})
