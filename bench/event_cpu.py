"""Server CPU per node event for one subscribed client, without a socket: the publisher, the bus and the websocket sink.

20,000 ``add`` nodes' start and completion events (40,000) are published from a worker thread, as the processor
does, to a bus with a server's sinks (the host's own, the log at WARNING, and the websocket sink with one client,
``batch`` or ``plain`` framing, whose send keeps nothing); the process's CPU from the first event until the client's
buffer is empty, per event. Run it from a checkout's root to measure that checkout's host; the SDK and the plugins are
the installed ones unless ``PYTHONPATH`` names another checkout's:

    .venv/bin/python bench/event_cpu.py batch
    .venv/bin/python bench/event_cpu.py batch brief     # the client subscribes with "node_events": "brief"
    (cd /tmp/base && PYTHONPATH=/tmp/base/sdk:/tmp/base/plugins/core_nodes:/tmp/base/plugins/core_events \
        /path/to/.venv/bin/python /path/to/bench/event_cpu.py batch)
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.getcwd())
import invoke_core_nodes.plugin as core_nodes_plugin
from invoke_core_events.log_sink import LogSink
from invoke_core_events.websocket_sink import WebSocketSink
from invoke_core_nodes.math import AddInvocation
from invoke_sdk.outputs import IntegerOutput
from invoke_sdk.session_queue import QueueItemSummary

from invoke_host.config import HostConfig
from invoke_host.engine import GraphExecutionState, NodeCompleted, NodeStarted
from invoke_host.events import EventBus
from invoke_host.graph import parse_graph
from invoke_host.host import build_host
from invoke_host.queue.node_events import NodeEventPublisher

N = 20_000
GRAPH = {
    "nodes": {"r": {"type": "range", "start": 0, "stop": 10, "step": 1}, "it": {"type": "iterate"},
              "add": {"type": "add", "b": 1}},
    "edges": [{"source": {"node_id": "r", "field": "collection"},
               "destination": {"node_id": "it", "field": "collection"}},
              {"source": {"node_id": "it", "field": "item"}, "destination": {"node_id": "add", "field": "a"}}],
}


async def measure(batch: bool, node_events: str | None = None) -> float:
    logging.disable(logging.WARNING)  # the host has no storage backend here and says so
    host = build_host(HostConfig(root=Path(tempfile.mkdtemp())), [("core_nodes", core_nodes_plugin)],
                      entry_points=False)
    now = datetime.datetime.now(datetime.UTC)
    item = QueueItemSummary(item_id=7, queue_id="bench", batch_id="b" * 32, session_id="s" * 32,
                            status="in_progress", priority=0, created_at=now, updated_at=now)
    sink = WebSocketSink(1_000_000, buffer_bytes=1 << 30)
    assert host.events is not None
    bus = EventBus([*host.events.sinks, LogSink(), sink])
    await bus.start()

    async def send(text: str) -> None:
        return None

    async def close(code: int, reason: str) -> None:
        return None

    client = sink.connect(send, close)
    request: dict[str, object] = {"subscribe": "queue", "queue_id": "bench", "batch": batch}
    if node_events is not None:
        request["node_events"] = node_events
    client.handle(json.dumps(request))
    publish = NodeEventPublisher(bus, item, GraphExecutionState(host.registry, parse_graph(host.registry, GRAPH)))
    nodes = [AddInvocation(id=f"add-{i}-abcdef", a=i, b=1) for i in range(N)]
    outputs = [IntegerOutput(value=i + 1) for i in range(N)]

    def work() -> None:
        if hasattr(publish, "node_started"):  # the runner's direct calls, where the checkout has them
            for node, output in zip(nodes, outputs, strict=True):
                if publish.wants_node_events():  # asked before each node, as the runner does
                    publish.node_started(node, "add")
                    publish.node_completed(node, "add", output, False)
            return
        for node, output in zip(nodes, outputs, strict=True):
            publish(NodeStarted("s", node.id, "add", "add", invocation=node))
            publish(NodeCompleted("s", node.id, "add", "add", output, invocation=node))

    await asyncio.sleep(0.1)  # the subscription's answer is sent
    cpu = time.process_time()
    await asyncio.to_thread(work)
    while client.buffered_bytes or any(shared.messages for shared in sink._shared_everywhere):
        await asyncio.sleep(0.005)
    per_event = (time.process_time() - cpu) / (2 * N)
    await bus.stop()
    return per_event


def main() -> None:
    framing = sys.argv[1] if len(sys.argv) > 1 else "batch"
    node_events = sys.argv[2] if len(sys.argv) > 2 else None
    per_event = asyncio.run(measure(framing == "batch", node_events))
    form = f", {node_events}" if node_events else ""
    print(f"{os.getcwd()}: {framing}{form}: {per_event * 1e6:.1f} us of process CPU per node event "
          f"(load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
