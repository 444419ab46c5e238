"""Old import path of the color conversions."""

from invokeai.backend.image_util.color_conversion import *  # noqa: F403 - the old module re-exported them all
from invokeai.backend.image_util.color_conversion import __all__  # noqa: F401
