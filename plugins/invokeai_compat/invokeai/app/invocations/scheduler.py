"""InvokeAI's scheduler output (prefixed id: the host's diffusers nodes declare ``scheduler_output``)."""

from __future__ import annotations

from invokeai.app.invocations.baseinvocation import BaseInvocationOutput, invocation_output
from invokeai.app.invocations.fields import OutputField
from invokeai.backend.stable_diffusion.schedulers.schedulers import SCHEDULER_NAME_VALUES

__all__ = ["SchedulerOutput"]


@invocation_output("invokeai.scheduler_output")
class SchedulerOutput(BaseInvocationOutput):
    scheduler: SCHEDULER_NAME_VALUES = OutputField(description="Scheduler to use during inference")  # type: ignore[valid-type]
