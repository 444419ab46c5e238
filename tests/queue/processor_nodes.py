"""Test nodes for the processor, as a plugin module (also loaded through an entry point by the kill test)."""

from __future__ import annotations

import os
import time
from pathlib import Path

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

__all__ = ["FailInvocation", "HoldInvocation", "RequiredInvocation", "WaitInvocation", "register_invocations"]


@invocation_output("proc_test_output")
class ProcTestOutput(BaseInvocationOutput):
    value: int = OutputField()


@invocation("proc_wait", title="Wait for cancel", use_cache=False)
class WaitInvocation(BaseInvocation):
    """Reports progress, then waits until the run is canceled (at most ``limit_s``)."""

    limit_s: float = InputField(default=120.0)

    def invoke(self, context: InvocationContext) -> ProcTestOutput:
        context.util.signal_progress("waiting for a cancel", 0.5)
        deadline = time.monotonic() + self.limit_s
        while not context.util.is_canceled() and time.monotonic() < deadline:
            time.sleep(0.01)
        return ProcTestOutput(value=1)


@invocation("proc_hold", title="Hold until released", use_cache=False)
class HoldInvocation(BaseInvocation):
    """Saves an image (if asked), writes ``started-<pid>`` into ``folder``, then holds until a file ``release`` (or
    ``release-<pid>``, for this process alone) appears there or the run is canceled (then writes
    ``saw-cancel-<pid>``); saves an image once released if ``save_at_end``. Tests block and kill on files, not on
    timing."""

    folder: str = InputField()
    save: bool = InputField(default=False)
    save_at_end: bool = InputField(default=False)
    limit_s: float = InputField(default=120.0)

    def invoke(self, context: InvocationContext) -> ProcTestOutput:
        folder = Path(self.folder)
        if self.save:
            from PIL import Image  # only this node draws; the module stays light for the other tests

            context.images.save(Image.new("RGB", (8, 8)))
        (folder / f"started-{os.getpid()}").touch()
        deadline = time.monotonic() + self.limit_s
        while time.monotonic() < deadline:
            if context.util.is_canceled():
                (folder / f"saw-cancel-{os.getpid()}").touch()
                break
            if (folder / "release").exists() or (folder / f"release-{os.getpid()}").exists():
                if self.save_at_end:
                    from PIL import Image

                    context.images.save(Image.new("RGB", (8, 8)))
                break
            time.sleep(0.01)
        return ProcTestOutput(value=os.getpid())


@invocation("proc_fail", title="Fail", use_cache=False)
class FailInvocation(BaseInvocation):
    """Always raises."""

    message: str = InputField(default="boom")

    def invoke(self, context: InvocationContext) -> ProcTestOutput:
        raise ValueError(self.message)


@invocation("proc_required", title="Needs a value")
class RequiredInvocation(BaseInvocation):
    """Has a required input and no default."""

    value: int = InputField(description="Must be given, by the graph, an edge or batch data")

    def invoke(self, context: InvocationContext) -> ProcTestOutput:
        return ProcTestOutput(value=self.value)


@hookimpl
def register_invocations(register: RegisterInvocation) -> None:
    register(WaitInvocation)
    register(HoldInvocation)
    register(FailInvocation)
    register(RequiredInvocation)
