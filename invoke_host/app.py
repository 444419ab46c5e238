"""Start-up step 4: the Litestar app, built from a frozen registry."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from invoke_sdk.events import EVENT_SINKS_STATE_KEY
from invoke_sdk.storage_base import StorageUnavailableError, StorageValueError
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

import invoke_host
from invoke_host.allow_header import allow_header_hook
from invoke_host.api.dependencies import host_dependencies
from invoke_host.api.operation_ids import operation_id_creator
from invoke_host.api.router import api_routers
from invoke_host.api.storage_errors import storage_unavailable_handler, storage_value_handler
from invoke_host.config import HostConfig
from invoke_host.docs_pages import docs_routes, swagger_plugin
from invoke_host.host import Host, build_host
from invoke_host.logging_config import litestar_logging_config
from invoke_host.openapi_document import RegistryJsonRenderPlugin
from invoke_host.security import (
    HostAllowList,
    access_token_middleware,
    cross_site_middleware,
    host_check_middleware,
    json_depth_middleware,
    recursion_error_handler,
    request_body_timeout_middleware,
    security_headers_hook,
)
from invoke_host.security.headers import asset_page_policy, favicon_url
from invoke_host.static_assets import static_site

__all__ = ["create_app"]

logger = logging.getLogger("invoke_host")


def create_app(
    config: HostConfig | None = None,
    plugins: Sequence[Any] = (),
    *,
    entry_points: bool | None = None,
    host: Host | None = None,
) -> Litestar:
    """Build the app: load plugins, freeze the registry, then create Litestar from it.

    Tests pass an explicit ``plugins`` list and ``entry_points=False``, so every app is
    independent: there is no global registry to leak between them.
    """
    # The routers are built once: plugin routes are judged against their paths while the host is built, then they
    # are given the host's services (Litestar reads a router's dependencies when the app registers it).
    routers = api_routers()
    if host is None:
        host = build_host(config, plugins, entry_points=entry_points, core_routes=routers)
    if not host.shape.serves_http:
        raise ValueError(f"a {host.shape.value} node serves no HTTP: build the host as an API or all-in-one node")
    dependencies = host_dependencies(host)
    for router in routers:
        router.dependencies = dict(dependencies)
    config = host.config
    swagger = swagger_plugin()
    # The Swagger page loads its assets from wherever the plugin is told to (this server: docs_pages), and runs
    # one inline script holding the schema: its policy allows exactly those.
    schema_page = asset_page_policy(
        scripts=[swagger.js_url, swagger.standalone_preset_js_url],
        styles=[swagger.css_url],
        images=favicon_url(swagger.favicon),
    )
    static = static_site(r.value for r in host.registry.kind("static_assets").values())
    # Outermost first; see invoke_host.security for why in this order.
    middleware: list[Any] = [
        host_check_middleware(HostAllowList(config.host, config.allowed_hosts)),
        *([access_token_middleware(config.token, static.public)] if config.token is not None else []),
        cross_site_middleware(config.cors_origins),
        request_body_timeout_middleware(config.request_body_timeout_s),
        json_depth_middleware(config.max_json_depth),
    ]
    cors = (
        CORSConfig(allow_origins=config.cors_origins, allow_credentials=config.cors_allow_credentials)
        if config.cors_origins
        else None
    )
    openapi = OpenAPIConfig(
        title="Invoke Host",
        version=invoke_host.__version__,
        path="/schema",
        render_plugins=[RegistryJsonRenderPlugin(host.registry), swagger],
        operation_id_creator=operation_id_creator,
    )
    plugin_routes = host.registry.routes
    return Litestar(
        route_handlers=[
            *routers, *plugin_routes, *static.handlers,
            *docs_routes([*plugin_routes, *static.handlers]),
        ],
        on_startup=[host.start],
        on_shutdown=[host.stop],
        middleware=middleware,
        exception_handlers={
            RecursionError: recursion_error_handler,
            StorageUnavailableError: storage_unavailable_handler,
            StorageValueError: storage_value_handler,
        },
        before_send=[security_headers_hook({"/schema": schema_page}), allow_header_hook()],
        cors_config=cors,
        openapi_config=openapi,
        state=State({"host": host, EVENT_SINKS_STATE_KEY: host.events}),
        debug=False,
        # Its records go to the one root handler (invoke_host.logging_config), in one format, not to its own.
        logging_config=litestar_logging_config(),
    )
