"""Every first-party plugin, installed as it ships, loads beside all the others with nothing refused."""

from __future__ import annotations

import tomllib
from pathlib import Path

from invoke_host.config import HostConfig
from invoke_host.host import build_host

PLUGINS = Path(__file__).parent.parent / "plugins"


def _entry_point_names() -> list[str]:
    names = []
    for pyproject in sorted(PLUGINS.glob("*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text())
        # invokeai-compat has no entry point: it provides import names, each wrapped pack registers its own nodes.
        names += list(data["project"].get("entry-points", {}).get("invoke_host.plugins", {}))
    return names


def test_all_first_party_plugins_load_together_without_conflicts(tmp_path: Path) -> None:
    names = _entry_point_names()
    assert len(names) >= 5
    host = build_host(HostConfig(root=tmp_path, plugins_allow=names), entry_points=True)
    records = {r.name: r for r in host.registry.plugins}
    assert set(records) == set(names), "a first-party plugin is not installed in this environment"
    for name, record in records.items():
        assert record.status == "loaded", f"{name}: {record.error}"
        assert record.refused == [], f"{name} had contributions refused: {record.refused}"
