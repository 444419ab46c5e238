"""Tiles that cover an image with a minimum overlap, for running an image-to-image model piece by piece."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Tile", "tile_starts", "tiles"]


@dataclass(frozen=True)
class Tile:
    """A tile's box in the input image: left, top (inclusive) and right, bottom (exclusive)."""

    left: int
    top: int
    right: int
    bottom: int


def tile_starts(length: int, tile: int, min_overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` with at least ``min_overlap`` between them.

    The tiles are spread evenly, the last one ending at the edge; one tile when ``tile`` covers the length.
    """
    if tile >= length:
        return [0]
    if min_overlap >= tile:
        raise ValueError(f"the overlap ({min_overlap}) must be smaller than the tile ({tile})")
    count = -(-(length - min_overlap) // (tile - min_overlap))  # ceil
    count = max(count, 2)
    span = length - tile
    return [round(i * span / (count - 1)) for i in range(count)]


def tiles(width: int, height: int, tile: int, min_overlap: int) -> list[Tile]:
    """Tiles covering a ``width`` x ``height`` image, left to right then top to bottom."""
    xs = tile_starts(width, tile, min_overlap)
    ys = tile_starts(height, tile, min_overlap)
    return [Tile(x, y, min(x + tile, width), min(y + tile, height)) for y in ys for x in xs]
