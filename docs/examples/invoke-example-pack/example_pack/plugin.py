"""Named by the entry point: registers the pack's nodes, their migrations and a workflow it ships (imported inside
the hooks to keep start-up light)."""

import json
from importlib import resources

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterInvocation, RegisterNodeMigration, RegisterWorkflow
from invoke_sdk.workflows import PackWorkflow


@hookimpl
def register_invocations(register: RegisterInvocation) -> None:
    from example_pack.nodes import (
        GreetInvocation,
        InvertInvocation,
        LoRASizeInvocation,
        RepeatInvocation,
        WordCountInvocation,
    )

    register(RepeatInvocation)
    register(WordCountInvocation)
    register(InvertInvocation)
    register(LoRASizeInvocation)
    register(GreetInvocation)


@hookimpl
def register_node_migrations(register: RegisterNodeMigration) -> None:
    from example_pack.migrations import greet_1_to_2

    register("example_greet", "1.0.0", "2.0.0", greet_1_to_2)


@hookimpl
def register_workflows(register: RegisterWorkflow) -> None:
    graph = json.loads(resources.files("example_pack").joinpath("workflows/greet_and_count.json").read_text())
    register(PackWorkflow(
        id="example.greet-and-count", name="Greet and count", graph=graph, tags=("example", "text"),
        description="Greets someone and counts the words of the greeting",
    ))
