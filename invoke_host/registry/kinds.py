"""The kinds of contribution other than nodes: which hook offers each, and how it is keyed and checked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from invoke_sdk.models.loading import loader_key

from invoke_host.registry.checks import (
    check_event,
    check_event_sink,
    check_file_storage_backend,
    check_model_config,
    check_model_loader,
    check_model_prober,
    check_storage_backend,
)
from invoke_host.registry.model_contributions import model_config_key

__all__ = ["KINDS", "Kind"]


@dataclass(frozen=True)
class Kind:
    """A kind of contribution other than nodes: the hook that offers it and how it is keyed and checked.

    Two contributions of one kind with the same key conflict: the first registered stays and the
    second is refused with a message naming both plugins.
    """

    hook: str
    name: str
    key: Callable[[Any], str]
    check: Callable[[Any], None] | None = None


def _route_key(handler: Any) -> str:
    paths = sorted(getattr(handler, "paths", None) or [getattr(handler, "path", repr(handler))])
    methods = sorted(getattr(handler, "http_methods", None) or [])
    return f"{','.join(methods)} {','.join(map(str, paths))}".strip()


def _model_loader_key(loader: Any) -> str:
    return loader_key(loader.model_type, loader.model_format)


KINDS: list[Kind] = [
    Kind(hook="register_routes", name="routes", key=_route_key),
    Kind(hook="register_model_configs", name="model_configs", key=model_config_key, check=check_model_config),
    Kind(hook="register_model_probers", name="model_probers", key=lambda p: p.name, check=check_model_prober),
    Kind(hook="register_model_loaders", name="model_loaders", key=_model_loader_key, check=check_model_loader),
    Kind(hook="register_storage_backends", name="storage_backends", key=lambda f: f.name, check=check_storage_backend),
    Kind(hook="register_events", name="events", key=lambda c: c.__dict__["event_name"], check=check_event),
    Kind(hook="register_event_sinks", name="event_sinks", key=lambda s: s.name, check=check_event_sink),
    Kind(
        hook="register_file_storage_backends",
        name="file_storage_backends",
        key=lambda f: f.name,
        check=check_file_storage_backend,
    ),
]
"""Every non-node kind of contribution, in the order their hooks are called."""
