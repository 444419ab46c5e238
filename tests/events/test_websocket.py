"""``/ws``: subscriptions, delivery, slow clients, and the token and cross-site checks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from invoke_core_events.websocket_sink import CLOSE_TOO_SLOW, WebSocketSink
from invoke_sdk.events import QueueClearedEvent
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from tests.queue.conftest import graph, make_app
from tests.waiting import async_wait_until


def test_subscribed_client_gets_its_queue_events_only(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client, client.websocket_connect("/ws") as ws, \
            client.websocket_connect("/ws") as other:
        ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q1"}))
        assert ws.receive_json() == {"event": "subscribed", "data": {"room": "queue", "queue_id": "q1"}}
        other.send_text(json.dumps({"subscribe": "queue", "queue_id": "q2"}))
        assert other.receive_json()["event"] == "subscribed"

        r = client.post("/api/v1/queue/q1/enqueue_batch", json={"batch": {"graph": graph(), "runs": 2}})
        message = ws.receive_json()
        assert message["event"] == "batch_enqueued"
        assert message["data"]["batch_id"] == r.json()["batch"]["batch_id"]
        assert message["data"]["enqueued"] == 2 and message["data"]["queue_id"] == "q1"

        client.put("/api/v1/queue/q2/clear")
        assert other.receive_json()["event"] == "queue_cleared"  # q1's batch never reached q2's client

        ws.send_text(json.dumps({"unsubscribe": "queue", "queue_id": "q1"}))
        assert ws.receive_json()["event"] == "unsubscribed"
        ws.send_text("not json")
        assert "JSON" in ws.receive_json()["data"]["message"]
        # Nesting deeper than the parser recurses, within the size cap: an error answer, and the socket lives on.
        ws.send_text("[" * 60_000)
        assert ws.receive_json()["data"]["message"] == "messages must be JSON objects"
        ws.send_text(json.dumps({"subscribe": "galaxy", "queue_id": "q1"}))
        reply = ws.receive_json()
        assert reply["event"] == "error" and "subscribe" in reply["data"]["message"]
        client.post("/api/v1/queue/q1/enqueue_batch", json={"batch": {"graph": graph()}})
        client.put("/api/v1/queue/q2/clear")
        assert other.receive_json()["event"] == "queue_cleared"
        # Messages to one client keep their order: had the q1 batch reached ws, it would come first.
        ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q3"}))
        assert ws.receive_json()["event"] == "subscribed"


def test_websocket_needs_the_token_which_may_come_as_a_subprotocol(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path, token="s3cret")) as client:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws") as ws:
            ws.receive_json()
        assert refused.value.code == 4401 and "access token" in refused.value.detail
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(
            "/ws", subprotocols=["invoke-host.events", "invoke-host.bearer.wrong"]
        ) as ws:
            ws.receive_json()
        assert refused.value.code == 4401 and "wrong" in refused.value.detail
        with client.websocket_connect("/ws", subprotocols=["invoke-host.events", "invoke-host.bearer.s3cret"]) as ws:
            assert ws.accepted_subprotocol == "invoke-host.events"  # never the bearer entry, which holds the token
            ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q"}))
            assert ws.receive_json()["event"] == "subscribed"
        with client.websocket_connect("/ws", headers={"Authorization": "Bearer s3cret"}) as ws:
            assert ws.accepted_subprotocol is None
            ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q"}))
            assert ws.receive_json()["event"] == "subscribed"


def test_websocket_token_in_the_query_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path, token="s3cret")) as client:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws?token=s3cret") as ws:
            ws.receive_json()
        assert refused.value.code == 4400 and "URL" in refused.value.detail
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(
            "/ws", subprotocols=["invoke-host.bearer.s3cret"]
        ) as ws:
            ws.receive_json()
        assert refused.value.code == 4400 and "invoke-host.events" in refused.value.detail


def test_websocket_from_a_foreign_page_is_refused(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(
            "/ws", headers={"origin": "http://evil.example"}
        ) as ws:
            ws.receive_json()
        assert "origin" in refused.value.detail


async def test_a_client_that_falls_behind_is_disconnected_and_others_are_not_slowed() -> None:
    sink = WebSocketSink(buffer=5)
    release = asyncio.Event()
    closed: list[tuple[int, str]] = []
    fast_got: list[str] = []

    async def stuck_send(message: str) -> None:
        await release.wait()  # a client that never reads

    async def fast_send(message: str) -> None:
        fast_got.append(message)

    async def close(code: int, reason: str) -> None:
        closed.append((code, reason))

    slow = sink.connect(stuck_send, close)
    fast = sink.connect(fast_send, close)
    for client in (slow, fast):
        client.handle(json.dumps({"subscribe": "queue", "queue_id": "q"}))
    await asyncio.sleep(0)
    for i in range(20):
        sink.deliver(QueueClearedEvent.build("q"))  # returns at once whatever the clients do
        if i % 4 == 0:
            await asyncio.sleep(0)
    release.set()
    await asyncio.wait_for(slow.task, 10)
    assert closed == [(CLOSE_TOO_SLOW, slow.closed_reason)]
    assert slow.closed_reason is not None and "fell 5 events behind" in slow.closed_reason
    await async_wait_until(lambda: len(fast_got) >= 21, "the fast client to get every message")
    assert [json.loads(m)["event"] for m in fast_got] == ["subscribed"] + ["queue_cleared"] * 20
    assert fast.closed_reason is None
    await sink.stop()


async def test_a_batching_client_gets_every_waiting_message_in_one_array_frame_in_order() -> None:
    sink = WebSocketSink()
    frames: list[str] = []

    async def send(message: str) -> None:
        frames.append(message)

    async def close(code: int, reason: str) -> None:
        return None

    client = sink.connect(send, close)
    client.handle(json.dumps({"subscribe": "queue", "queue_id": "q", "batch": True}))
    for queue_id in ("q", "other", "q", "q"):
        sink.deliver(QueueClearedEvent.build(queue_id))

    def messages_in(sent: list[str]) -> int:
        return sum(len(d) if isinstance(d := json.loads(f), list) else 1 for f in sent)

    # Wait for every message, however framed; then check they came in one frame.
    await async_wait_until(lambda: messages_in(frames) >= 4, "the four waiting messages to be sent")
    assert len(frames) == 1  # everything that was waiting, in one frame
    decoded = json.loads(frames[0])
    assert [m["event"] for m in decoded] == ["subscribed", "queue_cleared", "queue_cleared", "queue_cleared"]
    assert all(m["data"]["queue_id"] == "q" for m in decoded)
    # A later subscribe with "batch": false goes back to one message per frame.
    client.handle(json.dumps({"subscribe": "queue", "queue_id": "q", "batch": False}))
    sink.deliver(QueueClearedEvent.build("q"))
    await async_wait_until(lambda: messages_in(frames[1:]) >= 2, "the two later messages to be sent")
    assert [json.loads(f)["event"] for f in frames[1:]] == ["subscribed", "queue_cleared"]
    await sink.stop()


def test_batch_subscription_over_the_socket_and_a_bad_batch_flag(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client, client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q1", "batch": "yes"}))
        reply = ws.receive_json()
        assert reply["event"] == "error" and '"batch": true' in reply["data"]["message"]
        ws.send_text(json.dumps({"subscribe": "queue", "queue_id": "q1", "batch": True}))
        assert ws.receive_json() == [{"event": "subscribed", "data": {"room": "queue", "queue_id": "q1"}}]
        client.put("/api/v1/queue/q1/clear")
        frame = ws.receive_json()
        assert isinstance(frame, list) and frame[0]["event"] == "queue_cleared"
