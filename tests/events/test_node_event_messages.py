"""The per-node events' wire messages, written from parts, are byte for byte what the typed events encode to.

A client's contract is the JSON of :func:`invoke_sdk.events.encode_message` applied to the typed event (the
encoding every event had before the node events were written from parts). Each node event type is checked here
against it and against a literal, with strings that need escaping, floats, inputs left out and cached outputs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import invoke_core_nodes.plugin as core_nodes_plugin
import pytest
from invoke_core_nodes.math import AddFloatInvocation, AddInvocation
from invoke_core_nodes.strings import StringJoinInvocation
from invoke_sdk.events import (
    BaseEvent,
    EncodedEvent,
    InvocationCompleteEvent,
    InvocationErrorEvent,
    InvocationProgressEvent,
    InvocationStartedEvent,
    encode_message,
)
from invoke_sdk.outputs import FloatOutput, IntegerOutput, StringOutput
from invoke_sdk.session_queue import QueueItemSummary

from invoke_host.config import HostConfig
from invoke_host.engine import GraphExecutionState, NodeCompleted, NodeFailed, NodeProgress, NodeStarted
from invoke_host.events import EventBus
from invoke_host.graph import parse_graph
from invoke_host.host import build_host
from invoke_host.queue.node_events import NodeEventPublisher

AWKWARD = 'quote " backslash \\ slash / tab \t newline \n nul \x00 del \x7f é 漢字 😀 \u2028'


class EncodedRecorder:
    """A sink that takes encoded events and wants every node event."""

    name = "encoded-recorder"

    def __init__(self) -> None:
        self.encoded: list[EncodedEvent] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def wants(self, event_name: str) -> bool:
        return True

    def deliver(self, event: BaseEvent) -> None:
        raise AssertionError(f"node events come encoded, got {event.event_name} typed")

    def deliver_encoded(self, event: EncodedEvent) -> None:
        self.encoded.append(event)


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[tuple[NodeEventPublisher, EncodedRecorder, asyncio.AbstractEventLoop]]:
    host = build_host(HostConfig(root=tmp_path / "root"), [("core_nodes", core_nodes_plugin)], entry_points=False)
    graph = parse_graph(host.registry, {
        "nodes": {"first": {"type": "add_float", "a": 0.1, "b": 0.2},
                  "join": {"type": "string_join", "string_left": AWKWARD},
                  "base": {"type": "add", "a": 1, "b": 2},
                  "second": {"type": "add", "b": 10}},
        "edges": [{"source": {"node_id": "base", "field": "value"},
                   "destination": {"node_id": "second", "field": "a"}}],
    })
    now = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
    item = QueueItemSummary(item_id=7, queue_id="q é\"1", batch_id="batch-1", session_id="session-1",
                            status="in_progress", priority=0, created_at=now, updated_at=now)
    sink = EncodedRecorder()
    bus = EventBus([sink])
    loop = asyncio.new_event_loop()
    loop.run_until_complete(bus.start())
    try:
        yield NodeEventPublisher(bus, item, GraphExecutionState(host.registry, graph)), sink, loop
    finally:
        loop.run_until_complete(bus.stop())
        loop.close()


def _messages(sink: EncodedRecorder, loop: asyncio.AbstractEventLoop) -> list[EncodedEvent]:
    loop.run_until_complete(asyncio.sleep(0))  # the bus hands events over on the loop
    return sink.encoded


def _same_as_typed(event: EncodedEvent) -> dict[str, Any]:
    typed = event.typed()
    assert event.message == encode_message(typed)
    assert event.event_name == typed.event_name and event.room == typed.room()
    decoded: dict[str, Any] = json.loads(event.message)
    return decoded


def test_started_and_complete_messages_are_the_typed_events_encoding(recorded: Any) -> None:
    publish, sink, loop = recorded
    first = AddFloatInvocation(id="first", a=0.1, b=0.2)
    join = StringJoinInvocation(id="join-1", string_left=AWKWARD, string_right="ünï")
    second = AddInvocation(id="second", a=3, b=10)
    publish(NodeStarted("session-1", "first", "first", "add_float", invocation=first))
    publish(NodeCompleted("session-1", "first", "first", "add_float", FloatOutput(value=0.30000000000000004),
                          invocation=first))
    publish(NodeStarted("session-1", "join-1", "join", "string_join", invocation=join))
    publish(NodeCompleted("session-1", "join-1", "join", "string_join", StringOutput(value=AWKWARD + "ünï"),
                          invocation=join, cached=True))
    publish(NodeStarted("session-1", "second", "second", "add", invocation=second))
    publish(NodeCompleted("session-1", "second", "second", "add", IntegerOutput(value=13), invocation=second))
    events = _messages(sink, loop)
    assert [e.event_name for e in events] == ["invocation_started", "invocation_complete"] * 3
    assert not any(e.is_built for e in events)  # only an encoded sink listened
    decoded = [_same_as_typed(e) for e in events]
    assert [type(e.typed()) for e in events] == [InvocationStartedEvent, InvocationCompleteEvent] * 3
    timestamps = [d["data"].pop("timestamp") for d in decoded]
    assert timestamps == [e.typed().timestamp for e in events] and timestamps == sorted(timestamps)
    item = {"queue_id": "q é\"1", "item_id": 7, "batch_id": "batch-1", "session_id": "session-1"}
    node_first = {"invocation_id": "first", "invocation_source_id": "first", "invocation_type": "add_float",
                  "invocation": {"id": "first", "is_intermediate": False, "use_cache": True, "a": 0.1, "b": 0.2,
                                 "type": "add_float"}}
    assert decoded[0] == {"event": "invocation_started", "data": item | node_first}
    assert decoded[1] == {"event": "invocation_complete", "data": item | node_first | {
        "result": {"value": 0.30000000000000004, "type": "float_output"}, "cached": False}}
    assert decoded[3]["data"]["result"] == {"value": AWKWARD + "ünï", "type": "string_output"}
    assert decoded[3]["data"]["cached"] is True and decoded[3]["data"]["invocation"]["string_left"] == AWKWARD
    # "a" of "second" arrived over an edge: left out, as before.
    assert decoded[4]["data"]["invocation"] == {"id": "second", "is_intermediate": False, "use_cache": True,
                                                "b": 10, "type": "add"}
    # The exact bytes, keys in the typed events' order, non-ASCII as UTF-8 (pydantic's JSON), compact.
    assert events[1].message == (
        '{"event":"invocation_complete","data":{"timestamp":' + json.dumps(timestamps[1])
        + ',"queue_id":"q é\\"1","item_id":7,"batch_id":"batch-1","session_id":"session-1",'
        '"invocation_id":"first","invocation_source_id":"first","invocation_type":"add_float",'
        '"invocation":{"id":"first","is_intermediate":false,"use_cache":true,"a":0.1,"b":0.2,"type":"add_float"},'
        '"result":{"value":0.30000000000000004,"type":"float_output"},"cached":false}}'
    )


def test_progress_and_error_messages_are_the_typed_events_encoding(recorded: Any) -> None:
    publish, sink, loop = recorded
    join = StringJoinInvocation(id="join-1", string_left=AWKWARD)
    publish(NodeProgress("session-1", "join-1", "join", "string_join", AWKWARD, 0.5, invocation=join))
    publish(NodeFailed("session-1", "join-1", "join", "string_join", "ValueError", AWKWARD, "Traceback ...",
                       invocation=join))
    events = _messages(sink, loop)
    assert [type(e.typed()) for e in events] == [InvocationProgressEvent, InvocationErrorEvent]
    decoded = [_same_as_typed(e)["data"] for e in events]
    assert (decoded[0]["message"], decoded[0]["percentage"], decoded[0]["image"]) == (AWKWARD, 0.5, None)
    assert (decoded[1]["error_type"], decoded[1]["error_message"], decoded[1]["error_traceback"]) == (
        "ValueError", AWKWARD, "Traceback ...")


def test_a_typed_model_built_later_carries_the_messages_timestamp(recorded: Any) -> None:
    publish, sink, loop = recorded
    first = AddFloatInvocation(id="first", a=1e-7, b=1e300)
    publish(NodeCompleted("session-1", "first", "first", "add_float", FloatOutput(value=1e300), invocation=first))
    [event] = _messages(sink, loop)
    typed = event.typed()
    assert event.typed() is typed  # built once
    assert isinstance(typed, InvocationCompleteEvent) and typed.result == {"value": 1e300, "type": "float_output"}
    assert json.loads(event.message)["data"]["timestamp"] == typed.timestamp
    assert event.message == encode_message(typed)


def test_the_runner_s_direct_calls_write_the_same_messages_as_its_records(recorded: Any) -> None:
    publish, sink, loop = recorded
    first = AddFloatInvocation(id="first", a=0.1, b=0.2)
    join = StringJoinInvocation(id="join-1", string_left=AWKWARD, string_right="ünï")
    second = AddInvocation(id="second", a=3, b=10)
    outputs = [FloatOutput(value=0.30000000000000004), StringOutput(value=AWKWARD + "ünï"), IntegerOutput(value=13)]
    nodes = [(first, "first", False), (join, "join", True), (second, "second", False)]
    for (node, source, cached), output in zip(nodes, outputs, strict=True):
        publish(NodeStarted("session-1", node.id, source, node.type, invocation=node))
        publish(NodeCompleted("session-1", node.id, source, node.type, output, cached, invocation=node))
    assert publish.wants_node_events()  # the runner asks before each node, then calls the publisher directly
    for (node, source, cached), output in zip(nodes, outputs, strict=True):
        publish.node_started(node, source)
        publish.node_completed(node, source, output, cached)
    events = _messages(sink, loop)
    assert len(events) == 12 and not any(e.is_built for e in events)

    def without_timestamp(event: EncodedEvent) -> dict[str, Any]:
        decoded = _same_as_typed(event)
        decoded["data"].pop("timestamp")
        return decoded

    records, direct = [without_timestamp(e) for e in events[:6]], [without_timestamp(e) for e in events[6:]]
    assert direct == records
    assert [d["data"]["cached"] for d in direct if d["event"] == "invocation_complete"] == [False, True, False]
