"""The progress writer: rows read from the running state's history, stored in order, a failed batch sent again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import invoke_core_nodes.plugin as core_nodes_plugin
from invoke_sdk.session_queue import SessionNodeError, SessionNodeResult

from invoke_host.config import HostConfig
from invoke_host.engine import GraphExecutionState
from invoke_host.graph import parse_graph
from invoke_host.host import build_host
from invoke_host.queue.session_progress import ProgressWriter, restore_progress
from tests.waiting import async_wait_until


class _Store:
    """What the writer asks of the queue: append_progress. The first ``failures`` calls raise, as a busy database."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[list[int], list[str], bool]] = []
        """(seqs, error node ids, whether it was stored) per call."""
        self.rows: list[SessionNodeResult] = []

    async def append_progress(self, item_id: int, rows: Sequence[SessionNodeResult],
                              errors: Sequence[SessionNodeError] = (), *, worker_id: str | None = None,
                              attempt: int | None = None) -> None:
        assert (item_id, worker_id, attempt) == (7, "w", 2)
        failing = self.failures > 0
        self.calls.append(([r.seq for r in rows], [e.node_id for e in errors], not failing))
        if failing:
            self.failures -= 1
            raise OSError("database is locked")
        self.rows += rows


def _run_next(state: GraphExecutionState) -> None:
    node = state.next()
    assert node is not None
    state.complete(node.id, node.invoke(None))  # type: ignore[arg-type]  # add uses no context


async def test_rows_follow_the_history_after_the_replayed_ones_and_a_failed_batch_goes_again() -> None:
    host = build_host(HostConfig(), plugins=[("core_nodes", core_nodes_plugin)], entry_points=False)
    chain: dict[str, Any] = {
        "nodes": {f"n{i}": {"id": f"n{i}", "type": "add", "b": 1} for i in range(4)},
        "edges": [{"source": {"node_id": f"n{i}", "field": "value"},
                   "destination": {"node_id": f"n{i + 1}", "field": "a"}} for i in range(3)]}
    state = GraphExecutionState(host.registry, parse_graph(host.registry, chain), id="s")
    # A retry: n0's row was stored by the run before and is replayed, not stored again.
    replayed = SessionNodeResult(0, "n0#0", "n0", (), '{"value":10,"type":"integer_output"}')
    restore_progress(host.registry, state, [replayed])
    store = _Store(failures=1)
    writer = ProgressWriter(store, 7, state, asyncio.get_running_loop(), 0,  # type: ignore[arg-type]
                            worker_id="w", attempt=2)
    writer.start()
    _run_next(state)  # n1, while the writer runs: its first batch fails, the next one stores it
    await async_wait_until(lambda: any(stored for _, _, stored in store.calls), "n1's row stored")
    _run_next(state)
    _run_next(state)
    error = SessionNodeError("n3#0", "n3", "RuntimeError", "late", "tb")
    await writer.close([error])
    assert store.calls[0] == ([1], [], False) and store.calls[1] == ([1], [], True)
    # After that every batch landed, each row in one of them, in order; the errors went with the last.
    assert all(stored for _, _, stored in store.calls[1:])
    assert [seq for seqs, _, _ in store.calls[1:] for seq in seqs] == [1, 2, 3]
    assert [errors for _, errors, _ in store.calls] == [[]] * (len(store.calls) - 1) + [["n3#0"]]
    assert [(r.seq, r.node_id, r.source_node_id, r.path) for r in store.rows] == [
        (1, "n1#0", "n1", ()), (2, "n2#0", "n2", ()), (3, "n3#0", "n3", ())]
    assert [r.output_json for r in store.rows] == [state.results[r.node_id].model_dump_json() for r in store.rows]
    assert [r.output_json for r in store.rows] == [
        '{"value":11,"type":"integer_output"}', '{"value":12,"type":"integer_output"}',
        '{"value":13,"type":"integer_output"}']
