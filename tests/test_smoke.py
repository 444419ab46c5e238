from litestar.testing import TestClient

from invoke_host.app import create_app


def test_empty_host_answers_version() -> None:
    with TestClient(create_app(entry_points=False)) as client:
        body = client.get("/api/v1/app/version").json()
    assert body["version"] == "0.1.0"
