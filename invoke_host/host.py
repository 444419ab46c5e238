"""Start-up steps 1 to 3 in one place: discover plugins, collect their registrations, freeze."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from invoke_host.config import HostConfig
from invoke_host.plugin_loader import PluginSet, load_plugins
from invoke_host.registry import FrozenRegistry, collect

__all__ = ["Host", "build_host"]


@dataclass
class Host:
    """The loaded plugins and the frozen registry that an app or a CLI command works from."""

    config: HostConfig
    plugins: PluginSet
    registry: FrozenRegistry


def build_host(
    config: HostConfig | None = None,
    plugins: Sequence[Any] = (),
    *,
    entry_points: bool | None = None,
) -> Host:
    """Load ``plugins`` (and, unless turned off, every entry-point plugin) and freeze the registry.

    ``entry_points=None`` follows ``config.disable_plugin_autoload``; tests pass ``False`` and an
    explicit plugin list so that nothing installed on the machine leaks in.
    """
    config = config or HostConfig()
    use_entry_points = (not config.disable_plugin_autoload) if entry_points is None else entry_points
    plugin_set = load_plugins(
        plugins, entry_points=use_entry_points, allow=config.plugins_allow, block=config.plugins_block
    )
    return Host(config=config, plugins=plugin_set, registry=collect(plugin_set))
