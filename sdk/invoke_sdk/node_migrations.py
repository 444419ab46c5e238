"""Node versions and the migrations that upgrade an older node's dict to a newer version's.

A graph node may carry a reserved ``version`` key (``MAJOR.MINOR.PATCH``); absent means the version installed
now. A pack that changes a node's inputs in a way an older graph would break on (a renamed or removed field)
bumps the node's version in ``@invocation(version=...)`` and registers a migration through the
``register_node_migrations`` hook::

    @hookimpl
    def register_node_migrations(register):
        register("my_blur", "1.0.0", "2.0.0", lambda node: {**without(node, "radius"), "sigma": node["radius"]})

Before a graph is validated, each older node is upgraded along the chain of its type's migrations, one step at a
time (:func:`upgrade_node`). Releases of one MAJOR are taken as compatible (semantic versioning: a minor or patch
release breaks nothing), so only breaking changes need a migration: a node at 1.4.2 takes the migration from
1.0.0 to 2.0.0, and one at 2.0.3 simply becomes 2.1.0 when nothing changed in between. A node newer than the
installed one, or one with no way to the installed version, is refused.

The host and :func:`invoke_sdk.testing.migrate_node` both use :func:`upgrade_node`, so a pack's test of its
migration runs the same chain the server runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "VERSION_KEY",
    "NodeMigration",
    "NodeVersionError",
    "parse_version",
    "upgrade_node",
]

VERSION_KEY = "version"
"""The reserved key of a graph node that holds the version of its type it was written for."""

_SEMVER = re.compile(r"^([0-9]+)\.([0-9]+)\.([0-9]+)$")

Migrate = Callable[[dict[str, Any]], dict[str, Any]]
"""Maps a node's dict at one version to its dict at the next (``version`` key left out of both)."""


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.2.3"`` as ``(1, 2, 3)``; ``ValueError`` for anything that is not ``MAJOR.MINOR.PATCH``."""
    match = _SEMVER.match(version) if isinstance(version, str) else None
    if match is None:
        raise ValueError(f"{version!r} is not a version of the form MAJOR.MINOR.PATCH (such as '1.0.0')")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch)


@dataclass(frozen=True)
class NodeMigration:
    """One step of a node type's history: ``migrate`` turns its dict at ``from_version`` into ``to_version``'s."""

    node_type: str
    from_version: str
    to_version: str
    migrate: Migrate

    def __post_init__(self) -> None:
        if not isinstance(self.node_type, str) or not self.node_type:
            raise ValueError(f"a node migration needs the node type id, not {self.node_type!r}")
        older, newer = parse_version(self.from_version), parse_version(self.to_version)
        if newer <= older:
            raise ValueError(
                f"the migration of {self.node_type!r} from {self.from_version} to {self.to_version} does not go to a "
                "newer version"
            )
        if not callable(self.migrate):
            raise TypeError(f"the migration of {self.node_type!r} from {self.from_version} needs a callable migrate")

    @property
    def key(self) -> str:
        """``"<node type>@<from version>"``: one migration may start at each version of a type."""
        return f"{self.node_type}@{self.from_version}"


class NodeVersionError(ValueError):
    """A node cannot be brought to the installed version of its type; the message says why and what to do."""


def _step(
    node_type: str, version: tuple[int, int, int], by_start: Mapping[tuple[int, int, int], NodeMigration],
    current: tuple[int, int, int],
) -> tuple[int, int, int] | NodeMigration | None:
    """The next step up from ``version``, which no migration may start at exactly. In order: the migration that
    starts at ``version``; the next version of the same MAJOR a migration starts at (releases of one MAJOR are
    compatible, so a node may move up to it as it is); the migration of the same MAJOR that starts below
    ``version`` and leads past it (it was written for an older release of this MAJOR, which the node is compatible
    with); ``current`` if it has the same MAJOR; else None (no way up)."""
    if version in by_start:
        return by_start[version]
    later = sorted(v for v in by_start if v[0] == version[0] and version < v < current)
    if later:
        return later[0]
    spanning = [
        start for start, m in by_start.items()
        if start[0] == version[0] and start < version < parse_version(m.to_version)
    ]
    if spanning:
        return by_start[max(spanning)]
    if current[0] == version[0]:
        return current
    return None


def upgrade_node(
    node: Mapping[str, Any],
    current_version: str,
    migrations: Iterable[NodeMigration],
    *,
    node_id: str = "node",
    pack: str = "its pack",
) -> dict[str, Any]:
    """``node`` (a graph node's dict) upgraded to ``current_version``, its ``version`` key removed.

    ``migrations`` are the type's registered steps; ``node_id`` and ``pack`` (who installed the type, e.g.
    ``"my-pack 2.0.0"``) only word the errors. Raises :class:`NodeVersionError` for a node newer than
    ``current_version``, one with no path to it, a bad ``version`` value, or a migration that raised or
    returned something other than a dict of the same type.
    """
    node_type = str(node.get("type"))
    values = dict(node)
    given = values.pop(VERSION_KEY, None)
    if given is None:
        return values
    where = f"node {node_id!r} (type {node_type!r})"
    try:
        version = parse_version(given)
    except ValueError as exc:
        raise NodeVersionError(f"{where}: its 'version' {exc}") from None
    current = parse_version(current_version)
    if version > current:
        raise NodeVersionError(
            f"{where} is version {given}, newer than version {current_version} installed by {pack}; upgrade {pack} "
            "to a release with that version, or save the graph again from this server"
        )
    by_start = {parse_version(m.from_version): m for m in migrations if m.node_type == node_type}
    seen = given
    while version < current:
        step = _step(node_type, version, by_start, current)
        if step is None:
            raise NodeVersionError(
                f"{where} is version {given}, and {pack} installs version {current_version} with no migration from "
                f"{seen}: no way to upgrade it. Install a release of the pack with version {given}, or edit the "
                "node for the new version and remove its 'version' key"
            )
        if isinstance(step, tuple):
            version, seen = step, ".".join(map(str, step))
            continue
        try:
            upgraded = step.migrate(dict(values))
        except Exception as exc:  # a pack's migration may raise anything: say which one did
            raise NodeVersionError(
                f"{where}: the migration from {step.from_version} to {step.to_version} of {pack} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(upgraded, dict) or upgraded.get("type") != node.get("type"):
            raise NodeVersionError(
                f"{where}: the migration from {step.from_version} to {step.to_version} of {pack} returned "
                f"{type(upgraded).__name__ if not isinstance(upgraded, dict) else 'a node of another type'}, not the "
                "node's dict with the same 'type'"
            )
        upgraded.pop(VERSION_KEY, None)
        values = upgraded
        version, seen = parse_version(step.to_version), step.to_version
    if version != current:
        raise NodeVersionError(
            f"{where}: the migrations of {pack} from {given} lead to {seen}, past the installed {current_version}"
        )
    return values
