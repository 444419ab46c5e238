"""The PostgreSQL backend's migrations on a real server: one node applies them when many start at once, a newer
schema is refused, a failing migration leaves nothing behind; and its URL never reaches a log with its password."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
from invoke_postgres_storage import Migration, PostgresBackend, masked_url
from invoke_postgres_storage.migrations import MIGRATIONS
from invoke_postgres_storage.migrator import MigrationError, UnknownMigrationError
from invoke_sdk.storage import StorageError

from tests.postgres_server import PostgresServer
from tests.storage.conftest import make_batch
from tests.waiting import wait_until

ROOT = Path(__file__).parent.parent.parent
NEWEST = max(m.version for m in MIGRATIONS)

# One node: waits for the gate file (so every node starts at the same moment), starts the backend, prints what
# it applied and whether its stores answer.
_NODE = textwrap.dedent("""
    import asyncio, json, os, sys, time
    from invoke_postgres_storage import PostgresBackend

    async def main() -> None:
        while not os.path.exists(sys.argv[2]):
            time.sleep(0.001)
        backend = PostgresBackend(sys.argv[1])
        await backend.start()
        counts = await backend.session_queue.counts("default")
        await backend.stop()
        print(json.dumps({"applied": backend.applied, "total": counts.total}))

    asyncio.run(main())
""")


def _versions(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def test_nodes_starting_at_once_on_an_empty_database_migrate_it_once_and_all_start(
    postgres_url: str, tmp_path: Path
) -> None:
    gate = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    nodes = [
        subprocess.Popen([sys.executable, "-c", _NODE, postgres_url, str(gate)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(5)
    ]
    try:
        # Every interpreter is up (it has imported psycopg and waits on the gate) before the gate opens.
        wait_until(lambda: all(n.poll() is None for n in nodes), "the nodes to start", timeout=5)
        time.sleep(0)
        gate.touch()
        outputs = [n.communicate(timeout=60) for n in nodes]
    finally:
        for n in nodes:
            if n.poll() is None:
                n.kill()
    assert [n.returncode for n in nodes] == [0] * 5, [err for _, err in outputs]
    reports = [json.loads(out) for out, _ in outputs]
    applied = sorted((r["applied"] for r in reports), key=len)
    assert applied == [[]] * 4 + [list(range(1, NEWEST + 1))]  # exactly one node applied them, each once
    assert all(r["total"] == 0 for r in reports)  # and every node started and reads the migrated schema
    assert _versions(postgres_url) == list(range(1, NEWEST + 1))


async def test_a_database_with_a_newer_schema_is_refused_and_left_alone(postgres_url: str) -> None:
    first = PostgresBackend(postgres_url)
    await first.start()
    await first.stop()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, description) VALUES (99, 'from the future')")
    with pytest.raises(UnknownMigrationError, match=r"99 \(from the future\).*newer version") as refused:
        await PostgresBackend(postgres_url).start()
    assert f"knows 1 to {NEWEST}" in str(refused.value)
    assert _versions(postgres_url) == [*range(1, NEWEST + 1), 99]


async def test_a_failing_migration_is_rolled_back_whole(postgres_url: str) -> None:
    bad = Migration(NEWEST + 1, "half done", ("CREATE TABLE half_done (a integer)", "SELECT no_such_function()"))
    with pytest.raises(MigrationError, match=rf"migration {NEWEST + 1} \(half done\).*left at version {NEWEST}"):
        await PostgresBackend(postgres_url, migrations=(*MIGRATIONS, bad)).start()
    assert _versions(postgres_url) == list(range(1, NEWEST + 1))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
    backend = PostgresBackend(postgres_url)  # the earlier migrations stand: the code of this version starts
    await backend.start()
    try:
        assert (await backend.session_queue.enqueue(*make_batch(n=1), prepend=False)).item_ids == [1]
    finally:
        await backend.stop()


def test_masked_url_hides_the_password_only() -> None:
    assert masked_url("postgresql://app:s3cret@db.example:5432/invoke") == "postgresql://app:***@db.example:5432/invoke"
    assert masked_url("postgresql://app@db/invoke") == "postgresql://app@db/invoke"
    assert masked_url("postgresql://db/invoke?sslmode=require&password=s3cret") == (
        "postgresql://db/invoke?sslmode=require&password=***"
    )
    assert masked_url("postgresql://a:b:c@h/d") == "postgresql://a:***@h/d"  # a colon in the password


async def test_the_password_never_reaches_the_log_or_an_error(
    postgres_server: PostgresServer, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The test server trusts loopback, so it ignores the password: the URL still carries one, as a real one would.
    with_password = postgres_url.replace("postgres@", "postgres:s3cret-pw@")
    caplog.set_level(logging.DEBUG)
    backend = PostgresBackend(with_password)
    await backend.start()
    await backend.stop()
    assert "postgres:***@127.0.0.1" in caplog.text and "s3cret-pw" not in caplog.text
    missing = with_password.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(StorageError) as refused:
        await PostgresBackend(missing).start()
    message = str(refused.value)
    assert "cannot connect to the database at postgresql://postgres:***@" in message and "no_such_database" in message
    assert "s3cret-pw" not in message and "\n" not in message
    assert "s3cret-pw" not in repr(PostgresBackend(with_password).db.shown)
