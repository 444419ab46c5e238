"""The PostgreSQL server the tests start: it answers, and each test's database is empty and its own."""

from __future__ import annotations

from tests.postgres_server import PostgresServer


def test_each_test_gets_an_empty_database_of_its_own(postgres_server: PostgresServer, postgres_url: str) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    assert postgres_server.psql("SELECT current_database()", database=name) == name
    assert postgres_server.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", database=name) == "0"
    postgres_server.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (7)", database=name)
    assert postgres_server.psql("SELECT x FROM t", database=name) == "7"
    assert name in postgres_server.psql("SELECT datname FROM pg_database").split()
