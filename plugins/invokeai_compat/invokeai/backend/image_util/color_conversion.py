"""InvokeAI's color-space conversions on torch tensors (channels first, values 0-1).

sRGB, linear sRGB and Oklab are implemented here; the other spaces are importable and refuse when called.
"""

from __future__ import annotations

from typing import Any

from invokeai_compat.unsupported import unsupported_callable

__all__ = [
    "gamut_clip_tensor", "hsl_from_linear_srgb", "hsl_from_srgb", "lab_from_linear_srgb", "lab_from_srgb",
    "lab_from_xyz", "linear_srgb_from_hsl", "linear_srgb_from_lab", "linear_srgb_from_oklab",
    "linear_srgb_from_oklch", "linear_srgb_from_srgb", "linear_srgb_from_xyz", "okhsl_from_srgb",
    "okhsv_from_srgb", "oklab_from_linear_srgb", "oklab_from_oklch", "oklab_from_srgb", "oklab_from_xyz",
    "oklch_from_linear_srgb", "oklch_from_oklab", "oklch_from_srgb", "oklch_from_xyz", "srgb_from_hsl",
    "srgb_from_lab", "srgb_from_linear_srgb", "srgb_from_okhsl", "srgb_from_okhsv", "srgb_from_oklab",
    "srgb_from_oklch", "srgb_from_xyz", "xyz_d50_to_d65", "xyz_d65_to_d50", "xyz_from_lab",
    "xyz_from_linear_srgb", "xyz_from_oklab", "xyz_from_oklch", "xyz_from_srgb",
]

# Björn Ottosson's Oklab matrices (linear sRGB -> LMS, cube-rooted LMS -> Lab).
_M1 = ((0.4122214708, 0.5363325363, 0.0514459929), (0.2119034982, 0.6806995451, 0.1073969566),
       (0.0883024619, 0.2817188376, 0.6299787005))
_M2 = ((0.2104542553, 0.7936177850, -0.0040720468), (1.9779984951, -2.4285922050, 0.4505937099),
       (0.0259040371, 0.7827717662, -0.8086757660))
_M1_INV = ((4.0767416621, -3.3077115913, 0.2309699292), (-1.2684380046, 2.6097574011, -0.3413193965),
           (-0.0041960863, -0.7034186147, 1.7076147010))
_M2_INV = ((1.0, 0.3963377774, 0.2158037573), (1.0, -0.1055613458, -0.0638541728),
           (1.0, -0.0894841775, -1.2914855480))


def _mix(matrix: tuple[tuple[float, float, float], ...], image: Any) -> Any:
    import torch

    m = torch.tensor(matrix, dtype=image.dtype, device=image.device)
    return torch.einsum("ij,j...->i...", m, image)


def linear_srgb_from_srgb(srgb: Any) -> Any:
    """sRGB (gamma-encoded) to linear sRGB."""
    return ((srgb + 0.055) / 1.055).clamp(min=0) ** 2.4 * (srgb > 0.04045) + (srgb / 12.92) * (srgb <= 0.04045)


def srgb_from_linear_srgb(linear: Any, alpha: float = 0.0, steps: int = 1) -> Any:
    """Linear sRGB to sRGB (gamma-encoded), clipped to 0-1."""
    linear = linear.clamp(0.0, 1.0)
    return (1.055 * linear ** (1 / 2.4) - 0.055) * (linear > 0.0031308) + (linear * 12.92) * (linear <= 0.0031308)


def oklab_from_linear_srgb(linear: Any) -> Any:
    """Linear sRGB to Oklab."""
    lms = _mix(_M1, linear)
    return _mix(_M2, lms.sign() * lms.abs() ** (1 / 3))


def linear_srgb_from_oklab(oklab: Any) -> Any:
    """Oklab to linear sRGB."""
    return _mix(_M1_INV, _mix(_M2_INV, oklab) ** 3)


def oklab_from_srgb(srgb: Any) -> Any:
    """sRGB to Oklab."""
    return oklab_from_linear_srgb(linear_srgb_from_srgb(srgb))


def srgb_from_oklab(oklab: Any, alpha: float = 0.0, steps: int = 1) -> Any:
    """Oklab to sRGB."""
    return srgb_from_linear_srgb(linear_srgb_from_oklab(oklab))


_WHY = "only sRGB, linear sRGB and Oklab conversions are implemented here"

gamut_clip_tensor = unsupported_callable("color_conversion.gamut_clip_tensor", _WHY)
hsl_from_linear_srgb = unsupported_callable("color_conversion.hsl_from_linear_srgb", _WHY)
hsl_from_srgb = unsupported_callable("color_conversion.hsl_from_srgb", _WHY)
lab_from_linear_srgb = unsupported_callable("color_conversion.lab_from_linear_srgb", _WHY)
lab_from_srgb = unsupported_callable("color_conversion.lab_from_srgb", _WHY)
lab_from_xyz = unsupported_callable("color_conversion.lab_from_xyz", _WHY)
linear_srgb_from_hsl = unsupported_callable("color_conversion.linear_srgb_from_hsl", _WHY)
linear_srgb_from_lab = unsupported_callable("color_conversion.linear_srgb_from_lab", _WHY)
linear_srgb_from_oklch = unsupported_callable("color_conversion.linear_srgb_from_oklch", _WHY)
linear_srgb_from_xyz = unsupported_callable("color_conversion.linear_srgb_from_xyz", _WHY)
okhsl_from_srgb = unsupported_callable("color_conversion.okhsl_from_srgb", _WHY)
okhsv_from_srgb = unsupported_callable("color_conversion.okhsv_from_srgb", _WHY)
oklab_from_oklch = unsupported_callable("color_conversion.oklab_from_oklch", _WHY)
oklab_from_xyz = unsupported_callable("color_conversion.oklab_from_xyz", _WHY)
oklch_from_linear_srgb = unsupported_callable("color_conversion.oklch_from_linear_srgb", _WHY)
oklch_from_oklab = unsupported_callable("color_conversion.oklch_from_oklab", _WHY)
oklch_from_srgb = unsupported_callable("color_conversion.oklch_from_srgb", _WHY)
oklch_from_xyz = unsupported_callable("color_conversion.oklch_from_xyz", _WHY)
srgb_from_hsl = unsupported_callable("color_conversion.srgb_from_hsl", _WHY)
srgb_from_lab = unsupported_callable("color_conversion.srgb_from_lab", _WHY)
srgb_from_okhsl = unsupported_callable("color_conversion.srgb_from_okhsl", _WHY)
srgb_from_okhsv = unsupported_callable("color_conversion.srgb_from_okhsv", _WHY)
srgb_from_oklch = unsupported_callable("color_conversion.srgb_from_oklch", _WHY)
srgb_from_xyz = unsupported_callable("color_conversion.srgb_from_xyz", _WHY)
xyz_d50_to_d65 = unsupported_callable("color_conversion.xyz_d50_to_d65", _WHY)
xyz_d65_to_d50 = unsupported_callable("color_conversion.xyz_d65_to_d50", _WHY)
xyz_from_lab = unsupported_callable("color_conversion.xyz_from_lab", _WHY)
xyz_from_linear_srgb = unsupported_callable("color_conversion.xyz_from_linear_srgb", _WHY)
xyz_from_oklab = unsupported_callable("color_conversion.xyz_from_oklab", _WHY)
xyz_from_oklch = unsupported_callable("color_conversion.xyz_from_oklch", _WHY)
xyz_from_srgb = unsupported_callable("color_conversion.xyz_from_srgb", _WHY)
