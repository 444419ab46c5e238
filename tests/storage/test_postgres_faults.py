"""Faults of the PostgreSQL database, on the real server: unreachable at start (one line, a non-zero exit), and lost
while the host runs (API answers 503 with why, the pool reconnects with backoff and says so, nothing is lost)."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import invoke_core_events.plugin as core_events_plugin
import invoke_postgres_storage.plugin as postgres_plugin
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.postgres_server import PostgresServer
from tests.queue.conftest import NodesPlugin, graph
from tests.waiting import wait_until

Q = "/api/v1/queue/default"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


def test_an_unreachable_database_at_start_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    url = f"postgresql://app:s3cret-pw@127.0.0.1:{_closed_port()}/invoke"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "invoke-host"), "serve", "--root", str(tmp_path), "--port",
         str(_closed_port()), "--database-url", url],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert errors[0].startswith(f"Error: cannot connect to the database at {url.replace('s3cret-pw', '***')}: ")
    assert "Connection refused" in errors[0] and "INVOKE_HOST_DATABASE_URL" in errors[0]
    assert "s3cret-pw" not in done.stderr + done.stdout


@pytest.mark.parametrize(("url", "said"), [
    ("mysql://app:s3cret-pw@db/invoke", "not mysql://;"),
    ("app:s3cret-pw@db/invoke", "not a value without a scheme;"),
])
def test_a_database_url_that_is_not_postgresql_is_refused_in_one_line(tmp_path: Path, url: str, said: str) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "invoke-host"), "serve", "--root", str(tmp_path), "--database-url", url],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1
    assert f"Error: database_url (INVOKE_HOST_DATABASE_URL) must start with postgresql://, {said}" in done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout and "Traceback" not in done.stderr


def _enqueue(client: TestClient[Litestar], n: int) -> Any:
    data = [[{"node_path": "add", "field_name": "a", "items": list(range(n))}]]
    body = {"batch": {"graph": graph(b=1), "data": data}}
    return client.post(f"{Q}/enqueue_batch", content=json.dumps(body), headers={"content-type": "application/json"})


def _completed(client: TestClient[Litestar]) -> int:
    response = client.get(f"{Q}/status")
    return int(response.json()["queue"]["completed"]) if response.status_code == 200 else -1


@pytest.fixture
def client(postgres_url: str, tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    config = HostConfig(root=tmp_path, database_url=postgres_url, database_retry_timeout_s=1.0)
    app = create_app(
        config,
        plugins=[("postgres_storage", postgres_plugin), ("core_events", core_events_plugin),
                 ("test_nodes", NodesPlugin())],
        entry_points=False,
    )
    with TestClient(app) as c:
        yield c


def test_a_lost_database_answers_503_then_the_host_reconnects_and_nothing_is_lost(
    client: TestClient[Litestar], postgres_server: PostgresServer, postgres_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    assert _enqueue(client, 2).status_code == 201
    wait_until(lambda: _completed(client) == 2, "the first items to run")
    postgres_server.stop()
    try:
        for response in (client.get(f"{Q}/status"), _enqueue(client, 1), client.get(f"{Q}/list")):
            assert response.status_code == 503, response.text
            detail = response.json()["detail"]
            assert detail.startswith("the database at postgresql://postgres@127.0.0.1:")
            assert "cannot be reached" in detail
            assert "database_retry_timeout_s" in detail
        assert "Lost the connection to the database" in caplog.text and "reconnecting with backoff" in caplog.text
    finally:
        postgres_server.start()
    # Back: the API answers again (once the pool has a connection: its next attempt is at most seconds away),
    # the worker claims again, and what was stored before the outage is all there.
    wait_until(lambda: client.get(f"{Q}/status").status_code == 200, "the API to answer again", timeout=30)
    assert _enqueue(client, 3).status_code == 201
    wait_until(lambda: _completed(client) == 5, "the items enqueued after the outage to run", timeout=30)
    assert "Reconnected to the database" in caplog.text
    page = client.get(f"{Q}/list", params={"limit": 10}).json()
    assert [i["status"] for i in page["items"]] == ["completed"] * 5 and page["total"] == 5


def test_connections_terminated_by_the_server_are_replaced_without_an_error(
    client: TestClient[Litestar], postgres_server: PostgresServer, postgres_url: str
) -> None:
    assert _enqueue(client, 1).status_code == 201
    wait_until(lambda: _completed(client) == 1, "the item to run")
    name = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s) t",
            (name,),
        ).fetchone()
    assert killed is not None and killed[0] >= 1
    for _ in range(3):
        assert client.get(f"{Q}/status").status_code == 200
    assert _enqueue(client, 1).status_code == 201
    wait_until(lambda: _completed(client) == 2, "the item enqueued after the connections were cut to run")


def test_a_value_postgresql_cannot_hold_answers_400_and_stores_nothing(client: TestClient[Litestar]) -> None:
    # PostgreSQL text and jsonb cannot hold a NUL character, which SQLite stores as it is.
    response = client.get("/api/v1/queue/de%00fault/status")
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("the database cannot store or compare a value of this request: ")
    data = [[{"node_path": "add", "field_name": "a", "items": [1]}]]
    body = {"batch": {"graph": graph(b=1), "data": data, "origin": "can\u0000vas"}}
    response = client.post(f"{Q}/enqueue_batch", content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert client.get(f"{Q}/status").json()["queue"]["total"] == 0
