"""The runner's cancel flag is a plain event that every cancel path sets (invoke_host/queue/processor.py).

The runner checks it twice a node; the paths themselves (a cancel through the API, another node's cancel or a lost
lease, a server stop) are tested end to end in test_processor.py, test_worker_processes.py and test_server_kill.py.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

from invoke_host.queue import processor
from tests.queue.test_processor import enqueue, make_app
from tests.waiting import wait_until

WAIT = {"nodes": {"wait": {"id": "wait", "type": "proc_wait", "limit_s": 60}}, "edges": []}


def _status(client: TestClient[Litestar], item_id: int) -> str:
    status: str = client.get(f"/api/v1/queue/default/i/{item_id}").json()["status"]
    return status


def _running_flag(client: TestClient[Litestar], item_id: int) -> Any:
    [proc] = client.app.state.host.processors
    wait_until(lambda: item_id in proc._running, f"item {item_id} to run")
    return proc._running[item_id]


def test_the_check_is_a_plain_event() -> None:
    # No override of is_set: the runner's check is threading.Event's own (one attribute read).
    assert processor._ItemCancel.is_set is threading.Event.is_set


def test_a_cancel_through_this_node_sets_the_running_items_flag_before_it_answers(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client:
        [item_id] = enqueue(client, WAIT)
        flag = _running_flag(client, item_id)
        assert not flag.is_set()
        assert client.put(f"/api/v1/queue/default/i/{item_id}/cancel").json()["status"] == "canceled"
        assert flag.is_set() and not flag.lost
        queue = client.app.state.host.queue
        wait_until(lambda: item_id not in client.app.state.host.processors[0]._running, "the item to stop")
        assert item_id not in queue._cancel_flags, "the queue service keeps the flag of an item no longer run"


def test_a_cancel_that_came_before_the_flag_was_watched_sets_it_at_once(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client:
        [item_id] = enqueue(client, WAIT)
        _running_flag(client, item_id)
        queue = client.app.state.host.queue

        async def cancel_then_watch() -> bool:
            # Both on the loop, in one go: the processor cannot end the item in between.
            queue._note_canceled([item_id])
            late = threading.Event()
            queue.watch_cancel(item_id, late)
            return late.is_set()

        assert client.blocking_portal.call(cancel_then_watch)
        wait_until(lambda: _status(client, item_id) == "canceled", "the item to be recorded as canceled")


def test_a_stop_sets_the_flags_of_the_running_items(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client:
        [item_id] = enqueue(client, WAIT)
        flag = _running_flag(client, item_id)
        [proc] = client.app.state.host.processors
        client.blocking_portal.call(proc.stop)
        assert flag.is_set() and not flag.lost
