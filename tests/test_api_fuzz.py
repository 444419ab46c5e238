"""No request, however malformed, makes the API answer 500, and every answer is one the document declares:
schemathesis fuzzes every operation in the OpenAPI document (as served, with every first-party plugin's routes)
against the app, services started, with all of its checks, on data that fits the document and on data that breaks
it. So the document is the contract in both directions:

- every answer's status, content type, headers and body are ones the operation declares (the error statuses of
  invoke_host/openapi_errors.py, the bodies of openapi_bodies.py), and ``OPTIONS`` names every method of the path;
- a request that breaks the document (a wrong type, a missing body, an unknown key of a closed object) is
  refused with 4xx, never half-accepted;
- a request that keeps to it is not refused as malformed: 400 is only for requests the document rules out. One
  whose values cannot be used here (a folder that does not exist, a cursor no listing gave out, a graph naming an
  unknown node) is answered 422, which the positive-data check is told to accept (docs/api.md, "Errors").
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.config import PositiveDataAcceptanceConfig
from schemathesis.config._checks import NegativeDataRejectionConfig
from schemathesis.specs.openapi.checks import negative_data_rejection
from schemathesis.specs.openapi.schemas import OpenApiSchema

from invoke_host.app import create_app
from invoke_host.config import HostConfig

ROOT = Path(tempfile.mkdtemp(prefix="invoke-fuzz-"))
APP = create_app(HostConfig(root=ROOT, processor_enabled=False))
# Their body is a graph: a union of every node type, whose boundary cases (the coverage phase) number in the
# thousands and took a minute of CPU per operation; the fuzzing phase still sends them positive and negative data.
GRAPH_BODIES = ["validate_graph", "enqueue_batch"]


def _schema(*, coverage: bool) -> OpenApiSchema:
    loaded = schemathesis.openapi.from_asgi("/schema/openapi.json", APP)
    loaded.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    loaded.config.phases.coverage.enabled = coverage
    # Schemathesis' defaults, and three answers to data that keeps to the document: 422 (well formed, but not
    # usable here: see the module docstring), 413 (over a limit the server is configured with; the error names the
    # setting) and 415 (the bytes of an upload's file part are not an image, which no schema can say; InvokeAI
    # answers 415 there too).
    loaded.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=["2xx", "3xx", "401", "403", "404", "409", "413", "415", "422", "429", "5xx"]
    )
    # And 413 among the refusals of data that breaks it: sizes are judged before content, so a batch that is too
    # large is refused for its size, whatever else is wrong with it.
    loaded.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
        expected_statuses=["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
    )
    return loaded


def _free_text_lists(operation: Any) -> set[str]:
    """The query parameters of ``operation`` that are lists of unconstrained strings."""
    names = set()
    for parameter in operation.definition.raw.get("parameters", []):
        if parameter.get("in") != "query":
            continue
        branches = parameter.get("schema", {}).get("oneOf") or [parameter.get("schema", {})]
        if any(b.get("type") == "array" and b.get("items") == {"type": "string"} for b in branches):
            names.add(parameter["name"])
    return names


def _reads_as_strings(value: Any) -> bool:
    if isinstance(value, list):
        return any(isinstance(item, (int, float, bool)) for item in value)
    return isinstance(value, (str, int, float, bool))


def _checks_for(case: schemathesis.Case) -> dict[str, Any]:
    """Leave out the refusal check where the negative data cannot be told from valid data on the wire.

    A query string cannot tell `tags=true` from a list of one tag "true": a scalar in a list-of-strings parameter,
    or a list of numbers there, arrives as a valid list of strings, which schemathesis' negative mode takes for a
    violation and expects refused. Only cases whose violated parameters are all such lists lose the check (the
    coverage phase does not run filter hooks, so this is judged per case).
    """
    if case.meta is None:
        return {}
    data = case.meta.phase.data
    violated = {data.parameter} if data.parameter else {m.parameter for m in data.mutations if m.parameter}
    free = _free_text_lists(case.operation)
    query = case.query or {}
    if violated and all(name in free and _reads_as_strings(query.get(name)) for name in violated):
        return {"excluded_checks": [negative_data_rejection]}
    return {}


schema = _schema(coverage=True).exclude(operation_id=GRAPH_BODIES)
graph_schema = _schema(coverage=False).include(operation_id=GRAPH_BODIES)


def setup_module() -> None:
    # Start the host's services (database, stores) so requests reach real handlers, not 503s.
    asyncio.run(APP.state.host.start())


def teardown_module() -> None:
    asyncio.run(APP.state.host.stop())


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_to_its_document(case: schemathesis.Case) -> None:
    case.call_and_validate(**_checks_for(case))


@graph_schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_graph_operations_keep_to_their_document(case: schemathesis.Case) -> None:
    case.call_and_validate(**_checks_for(case))
