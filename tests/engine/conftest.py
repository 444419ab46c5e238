from __future__ import annotations

from typing import Any

import engine_test_nodes
import invoke_core_nodes.plugin
import pytest

from invoke_host.config import HostConfig
from invoke_host.host import Host, build_host


def edge(src: str, src_field: str, dst: str, dst_field: str) -> dict[str, Any]:
    return {"source": {"node_id": src, "field": src_field}, "destination": {"node_id": dst, "field": dst_field}}


def plugins_for_engine_tests() -> list[tuple[str, Any]]:
    return [("core_nodes", invoke_core_nodes.plugin), ("engine_test_nodes", engine_test_nodes)]


@pytest.fixture
def host(tmp_path: Any) -> Host:
    return build_host(HostConfig(root=tmp_path / "root"), plugins_for_engine_tests(), entry_points=False)


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    engine_test_nodes.CALLS.clear()
    engine_test_nodes.STARTED.clear()
