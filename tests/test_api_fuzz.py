"""No request, however malformed, makes the API answer 500, and every answer is one the document declares:
schemathesis fuzzes every operation in the OpenAPI document (as served, with every first-party plugin's routes)
against the app, services started, and checks each answer's status, content type and body against the operation's
declared responses (the error statuses of invoke_host/openapi_errors.py, the bodies of openapi_bodies.py)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from invoke_host.app import create_app
from invoke_host.config import HostConfig

ROOT = Path(tempfile.mkdtemp(prefix="invoke-fuzz-"))
APP = create_app(HostConfig(root=ROOT, processor_enabled=False))
schema = schemathesis.openapi.from_asgi("/schema/openapi.json", APP)


def setup_module() -> None:
    # Start the host's services (database, stores) so requests reach real handlers, not 503s.
    asyncio.run(APP.state.host.start())


def teardown_module() -> None:
    asyncio.run(APP.state.host.stop())


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_500_or_an_undeclared_answer(case: schemathesis.Case) -> None:
    case.call_and_validate(
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    )
