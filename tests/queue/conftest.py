from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import invoke_core_events.plugin as core_events_plugin
import invoke_sqlite_storage.plugin as sqlite_plugin
import pytest
from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    InputField,
    InvocationContext,
    OutputField,
    hookimpl,
    invocation,
    invocation_output,
)
from invoke_sdk.hookspecs import RegisterInvocation
from litestar import Litestar
from litestar.testing import TestClient

from invoke_host.app import create_app
from invoke_host.config import HostConfig


@invocation_output("test_int_output")
class IntOutput(BaseInvocationOutput):
    value: int = OutputField()


@invocation("test_add", title="Add")
class AddInvocation(BaseInvocation):
    a: int = InputField(default=0, ge=0, le=1000)
    b: int = InputField(default=0)

    def invoke(self, context: InvocationContext) -> IntOutput:
        return IntOutput(value=self.a + self.b)


class NodesPlugin:
    @hookimpl
    def register_invocations(self, register: RegisterInvocation) -> None:
        register(AddInvocation)


def make_app(root: Path, **config: Any) -> Litestar:
    """An app with the sqlite, core-events and test-node plugins; the processor is off unless asked for."""
    return create_app(
        HostConfig(root=root, **{"processor_enabled": False, **config}),
        plugins=[("sqlite_storage", sqlite_plugin), ("core_events", core_events_plugin), ("test_nodes", NodesPlugin())],
        entry_points=False,
    )


def graph(**fields: Any) -> dict[str, Any]:
    return {"nodes": {"add": {"id": "add", "type": "test_add", **fields}}, "edges": []}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient[Litestar]]:
    with TestClient(make_app(tmp_path)) as c:
        yield c
