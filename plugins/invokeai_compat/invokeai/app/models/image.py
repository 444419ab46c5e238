"""InvokeAI 3.0's import path of the image enums."""

from invokeai.app.services.image_records.image_records_common import ImageCategory, ResourceOrigin

__all__ = ["ImageCategory", "ResourceOrigin"]
