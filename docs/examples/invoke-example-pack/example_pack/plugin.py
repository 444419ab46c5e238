"""Named by the entry point: registers the pack's nodes (imported inside the hook to keep start-up light)."""

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterInvocation


@hookimpl
def register_invocations(register: RegisterInvocation) -> None:
    from example_pack.nodes import InvertInvocation, LoRASizeInvocation, RepeatInvocation, WordCountInvocation

    register(RepeatInvocation)
    register(WordCountInvocation)
    register(InvertInvocation)
    register(LoRASizeInvocation)
