"""Weight-free control maps on pixel arrays: Canny edges (OpenCV's algorithm) and the content-shuffle warp.

Written on numpy and PIL so the image nodes need no OpenCV wheel. Canny follows ``cv2.Canny`` with its
defaults (3x3 Sobel, L1 gradient magnitude, the strongest channel of a colour image, hysteresis between the
two thresholds); edge pixels are 255, the rest 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

__all__ = ["canny", "content_shuffle", "noise_disk"]

_TAN_22_5 = 0.4142135623730951
_TAN_67_5 = 2.414213562373095


def _sobel(channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.pad(channel, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    return gx, gy


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` moved so that ``out[y, x] == a[y + dy, x + dx]``, zero outside."""
    out = np.zeros_like(a)
    h, w = a.shape
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    out[yd, xd] = a[ys, xs]
    return out


def canny(pixels: np.ndarray, low: float, high: float) -> np.ndarray:
    """The Canny edge map (``uint8``, 0 or 255) of an ``(H, W)`` or ``(H, W, C)`` ``uint8`` array."""
    image = pixels.astype(np.float64)
    if image.ndim == 2:
        image = image[:, :, None]
    grads = [_sobel(image[:, :, c]) for c in range(image.shape[2])]
    mags = np.stack([np.abs(gx) + np.abs(gy) for gx, gy in grads])
    best = mags.argmax(axis=0)[None]
    mag = np.take_along_axis(mags, best, 0)[0]
    gx = np.take_along_axis(np.stack([g[0] for g in grads]), best, 0)[0]
    gy = np.take_along_axis(np.stack([g[1] for g in grads]), best, 0)[0]
    low, high = min(low, high), max(low, high)

    ax, ay = np.abs(gx), np.abs(gy)
    horizontal = ay < ax * _TAN_22_5
    vertical = ay > ax * _TAN_67_5
    diagonal = ~(horizontal | vertical)
    same_sign = (gx * gy) > 0
    # Non-maximum suppression: a pixel stays where it beats one neighbour across the edge and ties the other.
    keep = np.zeros(mag.shape, dtype=bool)
    for mask, (dy, dx) in ((horizontal, (0, 1)), (vertical, (1, 0)),
                           (diagonal & same_sign, (1, 1)), (diagonal & ~same_sign, (1, -1))):
        keep |= mask & (mag > _shift(mag, -dy, -dx)) & (mag >= _shift(mag, dy, dx))
    candidate = keep & (mag > low)
    edges = candidate & (mag > high)
    # Hysteresis: grow the strong edges through 8-connected candidates until nothing changes.
    while True:
        grown = edges.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    grown |= _shift(edges, dy, dx)
        grown &= candidate
        if np.array_equal(grown, edges):
            break
        edges = grown
    return np.where(edges, 255, 0).astype(np.uint8)


def noise_disk(height: int, width: int, factor: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth noise in ``[0, 1]``: coarse uniform noise, bicubic-upscaled by ``factor`` and cropped."""
    coarse = rng.uniform(0, 1, size=(height // factor + 2, width // factor + 2)).astype(np.float32)
    big = Image.fromarray(coarse, mode="F").resize((width + 2 * factor, height + 2 * factor), Image.Resampling.BICUBIC)
    noise = np.asarray(big, dtype=np.float64)[factor:factor + height, factor:factor + width]
    noise = noise - noise.min()
    top = noise.max()
    return noise / top if top > 0 else noise


def content_shuffle(pixels: np.ndarray, factor: int, seed: int) -> Any:
    """Each pixel taken from a place a smooth random flow points at (ControlNet's shuffle)."""
    height, width = pixels.shape[:2]
    rng = np.random.default_rng(seed)
    x = np.rint(noise_disk(height, width, factor, rng) * (width - 1)).astype(np.intp)
    y = np.rint(noise_disk(height, width, factor, rng) * (height - 1)).astype(np.intp)
    return pixels[y, x]
