"""No import cycle inside the SDK or the host, with each cycle named when there is one.

The import contracts in pyproject ``[tool.importlinter]`` (run by scripts/test) hold the arrows between the SDK,
the plugins and the host, and forbid cycles between the SDK's packages. This test finds the cycles between
modules, in both trees. Imports under ``if TYPE_CHECKING:`` and inside functions count: a cycle they hold apart
is still a cycle, only hidden.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest


def import_cycles(package: str, *, graph: grimp.ImportGraph | None = None) -> list[tuple[str, ...]]:
    """The import cycles among the modules of ``package``: for each import that lies on a cycle, the shortest
    cycle through it, each cycle once, shortest first (so an empty list means there is no cycle at all).

    A cycle ``(a, b, c)`` reads a imports b, b imports c, c imports a; it starts at its smallest module name.
    """
    graph = graph or grimp.build_graph(package, cache_dir=None)
    inside = graph.find_descendants(package) | {package}
    cycles: set[tuple[str, ...]] = set()
    for importer in inside:
        for imported in graph.find_modules_directly_imported_by(importer) & inside:
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                ring = (importer, *back[:-1])
                start = ring.index(min(ring))
                cycles.add(ring[start:] + ring[:start])
    return sorted(cycles, key=lambda cycle: (len(cycle), cycle))


def test_cycles_held_apart_by_type_checking_or_a_local_import_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "cycle_pack"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cycle_pack.b import B\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from cycle_pack.a import A\n\nB = 1\n"
    )
    (package / "c.py").write_text("def later():\n    import cycle_pack.d\n")
    (package / "d.py").write_text("import cycle_pack.c\n")
    (package / "e.py").write_text("import cycle_pack.a\n")  # imports into a cycle without being in one
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("cycle_pack") == [("cycle_pack.a", "cycle_pack.b"), ("cycle_pack.c", "cycle_pack.d")]


@pytest.mark.parametrize(
    "package",
    ["invoke_sdk", "invoke_host"],
)
def test_no_import_cycles_inside(package: str) -> None:
    cycles = import_cycles(package)
    shown = "\n".join(" -> ".join((*cycle, cycle[0])) for cycle in cycles[:20])
    assert not cycles, f"{len(cycles)} import cycle(s) inside {package}, the shortest first:\n{shown}"
