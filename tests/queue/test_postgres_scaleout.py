"""Scale-out on PostgreSQL as real processes on loopback (#12): two `serve --no-processor` API nodes and two
`invoke-host worker` processes on one database and one shared root folder drain one batch while one worker is
killed with SIGKILL. Every item completes exactly once, and websocket clients of both API nodes see the events
of both workers (the postgres_events plugin carries them between processes).

Items block on files (the `proc_hold` node), never on timing: the first two hold until both have started (so each
worker runs one), the last holds until its worker is killed and the survivor has taken it over.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.postgres_server import PostgresServer
from tests.queue.test_server_kill import _test_plugin_site
from tests.queue.test_worker_processes import LEASE_S, Cluster, Q, _call, _started_pid, _wait_for

ITEMS = 12


@pytest.fixture
def nodes(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Cluster, Cluster]]:
    """Two API nodes (the first also starts the two workers); all four share the database and the root."""
    site = _test_plugin_site(tmp_path)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(repo)]),
           "INVOKE_HOST_ROOT": str(tmp_path / "root"), "INVOKE_HOST_DATABASE_URL": postgres_url,
           "INVOKE_HOST_LEASE_SECONDS": str(LEASE_S), "INVOKE_HOST_WORKER_POLL_INTERVAL_S": "0.1"}
    one, two = Cluster(tmp_path / "root", env), Cluster(tmp_path / "root", env)
    try:
        one.start_api()  # first: it migrates the database the others open
        two.start_api()
        one.start_worker("w1")
        one.start_worker("w2")
        yield one, two
    finally:
        for process in [*one.workers.values(), one.api, two.api]:
            one.stop(process)


@contextmanager
def _subscribed(base: str) -> Iterator[ClientConnection]:
    # Unbounded client queue: the test reads the events only once the batch is done.
    with connect(base.replace("http://", "ws://") + "/ws", open_timeout=20, max_queue=None) as ws:
        ws.send(json.dumps({"subscribe": "queue", "queue_id": "default"}))
        assert json.loads(ws.recv(timeout=20))["event"] == "subscribed"
        yield ws


def _completions(ws: ClientConnection, items: set[int]) -> Counter[int]:
    """How often each item's status turned to completed, read up to the last of `items` (each receive bounded)."""
    done: Counter[int] = Counter()
    while set(done) != items:
        message = json.loads(ws.recv(timeout=30))
        data = message["data"]
        if message["event"] == "queue_item_status_changed" and data["status"] == "completed":
            done[data["item_id"]] += 1
    return done


def test_two_api_nodes_and_two_workers_drain_a_batch_through_a_sigkill(
    nodes: tuple[Cluster, Cluster], tmp_path: Path, postgres_server: PostgresServer, postgres_url: str
) -> None:
    one, two = nodes
    folders = [tmp_path / f"item-{n}" for n in range(ITEMS)]
    for n, folder in enumerate(folders):
        folder.mkdir()
        if 2 <= n < ITEMS - 1:
            (folder / "release").touch()  # the middle items run straight through
    graph = {"nodes": {"h": {"id": "h", "type": "proc_hold", "folder": "", "save": True}}, "edges": []}
    data = [[{"node_path": "h", "field_name": "folder", "items": [str(f) for f in folders]}]]
    with _subscribed(one.base) as on_one, _subscribed(two.base) as on_two:
        enqueued = _call("POST", f"{one.base}{Q}/enqueue_batch", {"batch": {"graph": graph, "data": data}})
        ids, batch_id = [int(i) for i in enqueued["item_ids"]], enqueued["batch"]["batch_id"]
        assert len(ids) == ITEMS

        # Each worker runs one item at a time: both first items started means one on each worker.
        _wait_for(lambda: all(_started_pid(f) is not None for f in folders[:2]), "both workers to start an item")
        assert {one.item(i)["worker_id"] for i in ids[:2]} == {"w1", "w2"}
        for folder in folders[:2]:
            (folder / "release").touch()

        _wait_for(lambda: _started_pid(folders[-1]) is not None, "the last item to start on a worker", limit_s=30)
        held = one.item(ids[-1])
        assert (held["status"], held["attempts"]) == ("in_progress", 1)
        victim = held["worker_id"]
        survivor = ({"w1", "w2"} - {victim}).pop()
        assert one.workers[victim].pid == _started_pid(folders[-1])
        one.workers[victim].send_signal(signal.SIGKILL)
        one.workers[victim].wait(30)

        def retried() -> bool:
            item = two.item(ids[-1])
            return bool(item["attempts"] == 2 and item["worker_id"] == survivor)

        _wait_for(retried, "the survivor to take the item over after the lease", limit_s=30)
        _wait_for(lambda: len(list(folders[-1].glob("started-*"))) == 2, "the retry to reach the node", limit_s=30)
        (folders[-1] / "release").touch()
        _wait_for(lambda: all(one.finished(i) for i in ids), "the batch to drain", limit_s=30)
        seen = [_completions(on_one, set(ids)), _completions(on_two, set(ids))]

    items = {i: two.item(i) for i in ids}
    assert {i: item["status"] for i, item in items.items()} == dict.fromkeys(ids, "completed")
    assert {i: item["attempts"] for i, item in items.items()} == {**dict.fromkeys(ids, 1), ids[-1]: 2}
    ran_by = {i: item["worker_id"] for i, item in items.items()}
    assert ran_by[ids[-1]] == survivor and set(ran_by.values()) == {"w1", "w2"}
    for api in (one, two):
        for i in ids:
            [result] = _call("GET", f"{api.base}{Q}/i/{i}/results")["items"]  # one row: the item's one node
            assert _call("GET", f"{api.base}{Q}/i/{i}/results?node_id=h")["items"] == [result]
            assert result["output"]["value"] == one.workers[ran_by[i]].pid  # the run that completed is stored
    # Each client saw each item complete once: the victim's items and the survivor's, on both API nodes.
    assert seen == [Counter(dict.fromkeys(ids, 1))] * 2
    # One image per node output, also for the retried item (the retry reused the first run's record).
    for api in (one, two):
        images = _call("GET", f"{api.base}/api/v1/images/?limit=100")["items"]
        assert sorted(image["session_id"] for image in images) == sorted(item["session_id"] for item in items.values())
    # The queue the nodes shared is the PostgreSQL one, not a SQLite file under the root.
    database = postgres_url.rsplit("/", 1)[1]
    assert postgres_server.psql("SELECT count(*) FROM queue_items WHERE status = 'completed'", database) == str(ITEMS)
    status = _call("GET", f"{two.base}{Q}/b/{batch_id}/status")
    assert (status["completed"], status["total"]) == (ITEMS, ITEMS)
