"""Threat: websocket clients that make the server hold memory for them.

Clients that never read while events (or the server's answers to their own messages) pile up, clients
that send huge messages, and clients that hang up with data still waiting: each must cost the server a
bounded number of bytes while connected and nothing once it is gone. Real clients on real sockets
against a real uvicorn server; what is asserted is the sink's own per-client state, read on the
server's loop (RSS is too noisy to judge).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import socket
import struct
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import invoke_core_events.plugin as core_events_plugin
import pytest
from invoke_core_events.websocket_sink import CLOSE_MESSAGE_TOO_BIG, WebSocketSink
from invoke_sdk.events import EVENT_SINKS_STATE_KEY, QueueEventBase
from litestar import Litestar
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.serving import uvicorn_config
from tests.live_server import LiveServer, live_server, wait_for

T = TypeVar("T")

BUDGET = 256 * 1024  # ws_client_buffer_bytes for these tests
MAX_MESSAGE = 64 * 1024  # ws_max_message_bytes (the default)


class PreviewEvent(QueueEventBase):
    """A large event, like a progress image: what fills a slow client's buffer fastest."""

    event_name: ClassVar[str] = "test_preview"
    blob: str


def _app(root: Path) -> Litestar:
    config = HostConfig(
        root=root, ws_client_buffer_bytes=BUDGET, ws_max_message_bytes=MAX_MESSAGE, ws_close_timeout=0.5,
        processor_enabled=False,
    )
    return create_app(config, [("core_events", core_events_plugin)], entry_points=False)


def _sink(app: Litestar) -> WebSocketSink:
    sink = app.state[EVENT_SINKS_STATE_KEY].sink("websocket")
    assert isinstance(sink, WebSocketSink)
    return sink


def _on_loop(app: Litestar, read: Callable[[], T]) -> T:
    """Run ``read`` on the server's loop (where the sink lives) and return its result."""

    async def call() -> T:
        return read()

    loop = app.state["host"].loop
    return asyncio.run_coroutine_threadsafe(call(), loop).result(10)


def _state(app: Litestar) -> tuple[int, int]:
    sink = _sink(app)
    return _on_loop(app, lambda: (len(sink.clients), sink.buffered_bytes))


class RawClient:
    """A websocket client on a bare socket that reads only what it is told to: it can stop reading entirely."""

    def __init__(self, server: LiveServer) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        self.sock.settimeout(10)  # a server that stopped reading us must fail a send, not hang the test
        self.sock.connect((server.host, server.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /ws HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)  # byte by byte: nothing after the handshake is read
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_text(self, text: str) -> None:
        payload = text.encode()
        n = len(payload)
        length = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n) if n < 65536 else (
            bytes([0x80 | 127]) + struct.pack("!Q", n)
        )
        # A zero masking key leaves the payload as it is (valid: servers must unmask whatever key is sent).
        self.sock.sendall(b"\x81" + length + b"\x00\x00\x00\x00" + payload)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Litestar, LiveServer]]:
    app = _app(tmp_path)
    # The websocket protocol `invoke-host serve` runs: backpressure and hang-ups are its to report.
    with live_server(app, ws=uvicorn_config(app, app.state["host"].config).ws) as server:
        yield app, server


def _subscribe(client: RawClient) -> None:
    client.send_text(json.dumps({"subscribe": "queue", "queue_id": "q"}))


def test_clients_that_stop_reading_are_dropped_within_their_byte_budget(served) -> None:  # type: ignore[no-untyped-def]
    app, server = served
    host = app.state["host"]
    clients = [RawClient(server) for _ in range(4)]
    for client in clients:
        _subscribe(client)
    wait_for(lambda: _state(app)[0] == 4, what="four clients connected")
    wait_for(lambda: all(_on_loop(app, lambda: [c.rooms for c in _sink(app).clients]) ), what="subscribed")
    peak = 0
    try:
        # 64 MB of events per client, far past the kernel's and the transport's buffers; none of it is read.
        blob = "x" * (1024 * 1024)
        for _ in range(64):
            host.events.emit(PreviewEvent(queue_id="q", blob=blob))
            count, held = _state(app)
            peak = max(peak, held)
            if count == 0:
                break
        wait_for(lambda: _state(app) == (0, 0), what="every non-reading client dropped and its buffer released")
        # Per client: the budget, plus the one message that always fits an empty buffer.
        assert peak <= 4 * (BUDGET + len(blob) + 200)
    finally:
        for client in clients:
            client.close()


def test_answers_to_bad_messages_quote_them_briefly_and_count_against_the_budget(served) -> None:  # type: ignore[no-untyped-def]
    app, server = served
    with connect(f"ws://{server.host}:{server.port}/ws") as ws:
        big = json.dumps({"not": "a subscription", "pad": "y" * 60_000})
        ws.send(big)
        reply = ws.recv(timeout=10)
        assert len(reply) < 600  # no echo of the 60 kB message
        data = json.loads(reply)["data"]
        assert data["received"] == big[:80] + f"... ({len(big)} bytes)"
    # A client that sends bad messages and never reads their answers is a slow client like any other.
    reader_less = RawClient(server)
    try:
        for sent in range(1, 50_001):
            reader_less.send_text('{"nothing": "useful"}')
            if sent % 200 == 0 and _state(app)[0] == 0:
                break
        wait_for(lambda: _state(app) == (0, 0), what="the client that never read its errors dropped")
    finally:
        reader_less.close()


def test_a_message_over_the_limit_closes_the_socket_with_a_reason_naming_the_setting(served) -> None:  # type: ignore[no-untyped-def]
    app, server = served  # plain uvicorn settings: the server lets 16 MiB through, the sink refuses it
    with connect(f"ws://{server.host}:{server.port}/ws", max_size=None) as ws:
        ws.send("z" * (1024 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CLOSE_MESSAGE_TOO_BIG
    assert closed.value.rcvd.reason == (
        f"a message of {1024 * 1024} bytes is over ws_max_message_bytes "
        f"(INVOKE_HOST_WS_MAX_MESSAGE_BYTES={MAX_MESSAGE})"
    )
    wait_for(lambda: _state(app) == (0, 0), what="the client's state released")


def test_under_serve_settings_the_protocol_refuses_the_message_before_buffering_it(tmp_path: Path) -> None:
    app = _app(tmp_path)
    with live_server(app, config=uvicorn_config(app, app.state["host"].config)) as server:
        with connect(f"ws://{server.host}:{server.port}/ws", max_size=None) as ws:
            ws.send("z" * (1024 * 1024))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == CLOSE_MESSAGE_TOO_BIG
        wait_for(lambda: _state(app) == (0, 0), what="the client's state released")


def test_clients_that_hang_up_with_data_waiting_leave_nothing_behind(served) -> None:  # type: ignore[no-untyped-def]
    app, server = served
    host = app.state["host"]
    clients = [RawClient(server) for _ in range(4)]
    for client in clients:
        _subscribe(client)
    wait_for(lambda: _state(app)[0] == 4, what="four clients connected")
    wait_for(lambda: all(_on_loop(app, lambda: [c.rooms for c in _sink(app).clients])), what="subscribed")
    refs: list[weakref.ref[Any]] = _on_loop(app, lambda: [weakref.ref(c) for c in _sink(app).clients])

    def least_held() -> int:
        return _on_loop(app, lambda: min(c.buffered_bytes for c in _sink(app).clients))

    # Events until every client's socket is full and the sink itself holds data for each (under the budget).
    for _ in range(2_000):
        # Emitted on the loop, so delivered at once: from another thread, an event in a stream waits for the bus's
        # next look (up to FOLLOW_UP), and this loop would overshoot the budget it means to stay under.
        _on_loop(app, lambda: host.events.emit(PreviewEvent(queue_id="q", blob="w" * 20_000)))
        if least_held() > 0:
            break
    assert least_held() > 0 and _state(app)[0] == 4
    for client in clients:
        client.close()
    wait_for(lambda: _state(app) == (0, 0), what="every client that hung up forgotten, its buffer released")
    _on_loop(app, gc.collect)
    assert [r() for r in refs] == [None] * 4
