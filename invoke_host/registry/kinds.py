"""The kinds of contribution other than nodes: which hook offers each, and how it is keyed and checked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from invoke_sdk.models.loading import loader_key
from invoke_sdk.node_migrations import NodeMigration
from invoke_sdk.static_assets import StaticAssets
from invoke_sdk.workflows import PackWorkflow

from invoke_host.registry.checks import (
    check_event,
    check_event_sink,
    check_file_storage_backend,
    check_model_config,
    check_model_loader,
    check_model_prober,
    check_storage_backend,
)
from invoke_host.registry.errors import RegistrationError
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
    offer: Callable[..., Any] | None = None
    """Builds the item from the hook's ``register(...)`` arguments, where they are not the item itself."""

    def register_into(self, append: Callable[[Any], None]) -> Callable[..., None]:
        """The ``register`` callback a plugin's hook is given: ``append``, or ``append(offer(...))``."""
        offer = self.offer
        if offer is None:
            return append

        def register(*args: Any, **kwargs: Any) -> None:
            append(offer(*args, **kwargs))

        return register


def _route_key(handler: Any) -> str:
    paths = sorted(getattr(handler, "paths", None) or [getattr(handler, "path", repr(handler))])
    methods = sorted(getattr(handler, "http_methods", None) or [])
    return f"{','.join(methods)} {','.join(map(str, paths))}".strip()


def _model_loader_key(loader: Any) -> str:
    return loader_key(loader.model_type, loader.model_format)


@dataclass(frozen=True)
class _BadOffer:
    """Arguments a ``register(...)`` call could not be built from: refused at the check, with the reason."""

    what: str
    reason: str


def _offer_migration(*args: Any, **kwargs: Any) -> NodeMigration | _BadOffer:
    # Built here, not in the plugin's hook, so one bad call is refused alone and the plugin's other offers load.
    try:
        return NodeMigration(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        return _BadOffer(f"node migration {args!r}", str(exc))


def _check_migration(item: Any) -> None:
    if isinstance(item, _BadOffer):
        raise RegistrationError(f"{item.what} is refused: {item.reason}")


def _check_workflow(item: Any) -> None:
    if not isinstance(item, PackWorkflow):
        raise RegistrationError(f"{item!r} is not an invoke_sdk.workflows.PackWorkflow")


def _check_static_assets(item: Any) -> None:
    if not isinstance(item, StaticAssets):
        raise RegistrationError(
            f"{item!r} is not an invoke_sdk.StaticAssets: only a folder of files that the host serves itself answers "
            "without the access token; a route handler goes to register_routes and stays behind the token"
        )
    try:
        folder = files(item.package).joinpath(*item.folder.split("/"))
        found = folder.is_dir()
    except (ImportError, TypeError, ValueError) as exc:
        raise RegistrationError(f"static assets {item.describe()}: package {item.package!r} cannot be read: {exc}") \
            from exc
    if not found:
        raise RegistrationError(f"static assets {item.describe()}: package {item.package!r} has no folder "
                                f"{item.folder!r}")
    for url, name in item.pages.items():
        if not folder.joinpath(name).is_file():
            raise RegistrationError(f"static assets {item.describe()}: page {url} names {name!r}, which the folder "
                                    "lacks")


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
    Kind(
        hook="register_node_migrations",
        name="node_migrations",
        key=lambda m: m.key,
        check=_check_migration,
        offer=_offer_migration,
    ),
    Kind(hook="register_workflows", name="workflows", key=lambda w: w.id, check=_check_workflow),
    Kind(hook="register_static_assets", name="static_assets", key=lambda a: a.describe(), check=_check_static_assets),
]
"""Every non-node kind of contribution, in the order their hooks are called."""
