# The import paths of InvokeAI 3.x packs, which many community packs still use.
from invokeai.app.invocations.baseinvocation import BaseInvocation, InputField, InvocationContext, invocation
from invokeai.app.invocations.primitives import StringOutput
from invokeai.app.services.image_records.image_records_common import ImageCategory
from invokeai.backend.util.devices import choose_torch_device  # noqa: F401
from invokeai.backend.util.logging import InvokeAILogger

logger = InvokeAILogger.get_logger("old_paths_pack")


@invocation("old_style_category", title="Old Style", version="1.0.0")
class OldStyleInvocation(BaseInvocation):
    """Names an image category the InvokeAI way."""

    upper: bool = InputField(default=False)

    def invoke(self, context: InvocationContext) -> StringOutput:
        value = ImageCategory.GENERAL.value
        return StringOutput(value=value.upper() if self.upper else value)
