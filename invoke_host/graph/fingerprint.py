"""What graph validation depends on, as one short string: a graph checked against one fingerprint need not be
checked again against the same.

A queue item stores the fingerprint of the registry that validated its graph at enqueue; when the item is
claimed, a host whose registry has the same fingerprint only rebuilds the nodes (the structural checks, a
large share of a big graph's cost, already passed), and a host with other node packs, other versions of them
or another version of the host validates the graph again in full.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from typing import TYPE_CHECKING

import invoke_host

if TYPE_CHECKING:
    from invoke_host.registry import FrozenRegistry

__all__ = ["registry_fingerprint"]

_fingerprints: dict[int, str] = {}
_lock = threading.Lock()


def _compute(registry: FrozenRegistry) -> str:
    packs = {p.name: f"{p.distribution}=={p.version}" for p in registry.plugins}
    lines = [f"invoke-host=={invoke_host.__version__}"]
    for kind, entries in (("node", registry.invocations), ("output", registry.outputs)):
        for key in sorted(entries):
            # From the class's source, so that a class restored from the node catalogue is not imported for this.
            source = entries.source(key)
            lines.append(f"{kind} {key} {source.module}.{source.qualname} {source.version} "
                         f"{source.plugin} {packs.get(source.plugin, '')}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:32]


def registry_fingerprint(registry: FrozenRegistry) -> str:
    """The node and output types of ``registry``, their versions and the packs (and versions) that gave them.

    Computed once per registry. Two registries with the same fingerprint validate every graph alike, as long
    as a pack's code changes only with its version (an editable install edited in place is the exception).
    """
    key = id(registry)
    with _lock:
        found = _fingerprints.get(key)
        if found is None:
            found = _fingerprints[key] = _compute(registry)
            # Keyed by id(): FrozenRegistry is not hashable; drop the entry when the registry goes.
            weakref.finalize(registry, _fingerprints.pop, key, None)
    return found
