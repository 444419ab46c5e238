"""Importing spandrel where torchvision is missing.

spandrel imports torchvision when it is imported, for two architectures only (LaMa inpainting and RestoreFormer
face restoration). Where torchvision is not installed (on the CPU torch build, PyPI's torchvision cannot load),
the import is made with stand-ins for the three names those two modules take; the stand-ins are removed again
at once, so nothing else sees a torchvision, and they raise a clear error if one of those two models runs.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["import_spandrel"]

_MISSING_HINT = "install spandrel: pip install 'invoke-spandrel-nodes[spandrel]' (or spandrel and einops)"


def _needs_torchvision(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("this spandrel architecture needs torchvision, which is not installed here")


def import_spandrel() -> Any:
    """The spandrel module; ``RuntimeError`` saying how to install it when it is missing."""
    try:
        import spandrel

        return spandrel
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("torchvision"):
            raise RuntimeError(f"spandrel is not installed: {_MISSING_HINT}") from exc
    for name in [n for n in sys.modules if n == "spandrel" or n.startswith("spandrel.")]:
        del sys.modules[name]  # the half-imported package of the failed attempt
    stand_ins = {name: types.ModuleType(name) for name in
                 ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")}
    functional = stand_ins["torchvision.transforms.functional"]
    functional.InterpolationMode = types.SimpleNamespace(BILINEAR="bilinear")  # type: ignore[attr-defined]
    functional.rotate = _needs_torchvision  # type: ignore[attr-defined]
    functional.normalize = _needs_torchvision  # type: ignore[attr-defined]
    sys.modules.update(stand_ins)
    try:
        import spandrel

        return spandrel
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)
