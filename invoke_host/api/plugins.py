"""``/api/v1/plugins``: what loaded, what failed and why."""

import msgspec
from litestar import get

from invoke_host.api.injected import Injected
from invoke_host.plugin_loader import PluginRecord
from invoke_host.registry import FrozenRegistry

__all__ = ["PluginInfo", "list_plugins", "plugin_info"]


class PluginInfo(msgspec.Struct):
    name: str
    distribution: str | None
    version: str | None
    module: str | None
    source: str
    status: str
    registered: dict[str, list[str]]
    refused: list[str]
    error: str | None = None
    traceback: str | None = None


def plugin_info(record: PluginRecord) -> PluginInfo:
    return PluginInfo(
        name=record.name,
        distribution=record.distribution,
        version=record.version,
        module=record.module,
        source=record.source,
        status=record.status,
        registered=record.registered,
        refused=record.refused,
        error=record.error,
        traceback=record.traceback,
    )


@get("/plugins", tags=["plugins"], summary="Every plugin: loaded, failed or blocked", sync_to_thread=False)
def list_plugins(registry: Injected[FrozenRegistry]) -> list[PluginInfo]:
    return [plugin_info(r) for r in registry.plugins]
