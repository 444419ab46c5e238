"""Encoded responses of image listing pages and records, served again while no image record has changed.

A listing page at 100,000 records costs about a millisecond of SQL, validation and encoding, ten times what an
empty app spends on a whole request; a gallery asks for the same first page over and over. Every entry is kept
under one *records version* (``ImageVersionedRecordStore.records_version``: a counter the storage backend's
triggers raise with every change of a record, in whichever process makes it). An entry is served only while the
version read for the request is the one it was cached under: the version is read before the page is, so a page
is never newer-than-cached-as; at worst a page is cached under a version that has already moved, and the next
request reads it again.

One version for all entries: a change anywhere empties the whole cache. A change to one record can move any page
(its place, ``total``), so nothing finer would be both right and cheap.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["CachedResponse", "ImagePageCache"]

# What an entry costs beyond its body and key: the headers, the tuple, the dict slot (measured about 0.5 KiB).
_ENTRY_OVERHEAD = 512


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """One response as the route sent it (before the app's ``before_send`` hooks, which run again on a replay)."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + _ENTRY_OVERHEAD


class ImagePageCache:
    """Least-recently-used responses by request key, all under one records version, at most ``max_bytes`` in all.

    Not thread-safe: used from the event loop only.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1 (leave the cache out to have none)")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, CachedResponse] = OrderedDict()
        self._version: int | None = None
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        """The bytes the entries account for now (always at most ``max_bytes``)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes, version: int) -> CachedResponse | None:
        """The response cached for ``key`` under ``version``, or None; a new version drops every entry first."""
        if version != self._version:
            self._reset(version)
            return None
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: bytes, version: int, response: CachedResponse) -> None:
        """Keep ``response`` for ``key`` if ``version`` is still the newest one seen (a page read before a change
        that a later request already saw is dropped), evicting the least recently used entries to make room."""
        if version != self._version:
            return
        size = response.size + len(key)
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size + len(key)
        while self._entries and self._bytes + size > self.max_bytes:
            gone_key, gone = self._entries.popitem(last=False)
            self._bytes -= gone.size + len(gone_key)
        self._entries[key] = response
        self._bytes += size

    def _reset(self, version: int) -> None:
        self._entries.clear()
        self._bytes = 0
        self._version = version
