"""A big graph is validated off the event loop: the server answers other requests while an enqueue validates."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import invoke_core_events.plugin as core_events_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
from invoke_sdk import BaseInvocation, BaseInvocationOutput, InputField, OutputField, hookimpl, invocation
from invoke_sdk import invocation_output as output
from invoke_sdk.hookspecs import RegisterInvocation
from pydantic import model_validator

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.queue.live_server import live_server

Q = "/api/v1/queue/default"


class _Gate:
    """Holds the validation of a ``gated`` node until the test opens it (only while armed)."""

    def __init__(self) -> None:
        self.armed = False
        self.entered = threading.Event()
        self.open = threading.Event()


GATE = _Gate()


@output("gated_output")
class GatedOutput(BaseInvocationOutput):
    value: int = OutputField()


@invocation("gated")
class GatedInvocation(BaseInvocation):
    a: int = InputField(default=0)

    @model_validator(mode="after")
    def _wait_for_the_test(self) -> GatedInvocation:
        if GATE.armed:
            GATE.entered.set()
            GATE.open.wait(30)
        return self

    def invoke(self, context: Any) -> GatedOutput:
        return GatedOutput(value=self.a)


class GatedNodes:
    @hookimpl
    def register_invocations(self, register: RegisterInvocation) -> None:
        register(GatedInvocation)


def _graph(n: int) -> dict[str, Any]:
    return {"nodes": {f"n{i}": {"type": "gated", "a": i} for i in range(n)}, "edges": []}


async def test_other_requests_are_answered_while_a_big_graph_validates(tmp_path: Path) -> None:
    app = create_app(
        HostConfig(root=tmp_path, processor_enabled=False),
        [("sqlite_storage", sqlite_plugin), ("core_events", core_events_plugin), ("gated", GatedNodes())],
        entry_points=False,
    )
    with live_server(app) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            GATE.armed = True
            try:
                # One item, a graph of 1,000 nodes: the validation, not the batch size, is the work.
                big = asyncio.create_task(client.post(f"{Q}/enqueue_batch", json={"batch": {"graph": _graph(1000)}}))
                assert await asyncio.to_thread(GATE.entered.wait, 10), "the big graph's validation did not start"
                # Bounded: with the loop stuck in the validation these would wait for the gate (30 s) and time out.
                version = await client.get("/api/v1/app/version", timeout=10)
                counts = await client.get(f"{Q}/status", timeout=10)
                assert version.status_code == 200 and counts.status_code == 200
                assert counts.json()["queue"]["total"] == 0
                assert not big.done()  # still validating, and yet the other requests were answered
            finally:
                GATE.armed = False
                GATE.open.set()
            enqueued = await big
            assert enqueued.status_code == 201, enqueued.text
            assert (await client.get(f"{Q}/status")).json()["queue"]["pending"] == 1
