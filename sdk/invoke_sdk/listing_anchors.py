"""Keyset places of deep offsets in a listing, so a storage backend can start an ``offset`` page near it.

``LIMIT 50 OFFSET 50000`` walks 50,000 index entries before it reads a row (20-30 ms on SQLite at 100,000
images, 100 ms and more with filters), and a client that pages a gallery by offset asks for page after page.
A backend that pages by keyset anyway (a cursor is the last row's place in the listing's order) can remember
where every ``spacing``-th row of a listing is, and answer offset ``o`` from the place of row
``o // spacing * spacing - 1`` with a remainder under ``spacing``. Those places hold only while no record
changes: each set of places is kept with the records version it was read under (the backend reads the version in
the same statement as the rows, so the two always agree), and a backend passes the version it read with every
lookup; another version drops the listing's places.

Bounded: at most ``max_listings`` listings (filters and order), least recently used first out, each with places
for at most ``max_blocks`` blocks (deeper offsets start from the deepest and count the rest off).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["ListingAnchors"]

K = TypeVar("K")


@dataclass
class _Listing(Generic[K]):
    version: int
    places: dict[int, K] = field(default_factory=dict)


class ListingAnchors(Generic[K]):
    """The keyset place (``K``: whatever the backend's cursor holds) of every ``spacing``-th row per listing.

    Block ``b`` (``b >= 1``) is the place of the row at position ``b * spacing - 1``, the last row before offset
    ``b * spacing``. Not thread-safe: a backend calls it from the event loop only.
    """

    def __init__(self, *, spacing: int = 1024, max_listings: int = 16, max_blocks: int = 1024) -> None:
        if spacing < 1 or max_listings < 1 or max_blocks < 1:
            raise ValueError("spacing, max_listings and max_blocks must each be at least 1")
        self.spacing = spacing
        self.max_listings = max_listings
        self.max_blocks = max_blocks
        self._listings: OrderedDict[Hashable, _Listing[K]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._listings)

    def block_of(self, offset: int) -> int:
        """The block whose place an ``offset`` page starts from (0: the start of the listing)."""
        return min(offset // self.spacing, self.max_blocks)

    def nearest(self, listing: Hashable, block: int) -> tuple[int, K | None, int | None]:
        """``(b, place, version)``: the deepest known block ``b <= block`` of ``listing``, its place and the
        version it was read under; ``(0, None, None)`` when none is known (start from the listing's start)."""
        entry = self._listings.get(listing)
        if entry is None:
            return 0, None, None
        self._listings.move_to_end(listing)
        for b in range(block, 0, -1):
            place = entry.places.get(b)
            if place is not None:
                return b, place, entry.version
        return 0, None, entry.version

    def keep(self, listing: Hashable, block: int, place: K, version: int) -> None:
        """Remember ``place`` for ``block`` of ``listing`` as read under ``version``; places read under another
        version are dropped first."""
        if not 1 <= block <= self.max_blocks:
            raise ValueError(f"block must be between 1 and {self.max_blocks}, not {block}")
        entry = self._listings.get(listing)
        if entry is None or entry.version != version:
            entry = _Listing(version)
            self._listings[listing] = entry
        self._listings.move_to_end(listing)
        entry.places[block] = place
        while len(self._listings) > self.max_listings:
            self._listings.popitem(last=False)

    def forget(self, listing: Hashable) -> None:
        """Drop every place of ``listing`` (its records changed since they were read)."""
        self._listings.pop(listing, None)
