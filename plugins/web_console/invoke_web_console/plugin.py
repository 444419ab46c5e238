"""Entry point: registers the console's page at ``/`` and its assets under ``/console/``."""

from __future__ import annotations

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterRoute

__all__ = ["register_routes"]


@hookimpl
def register_routes(register: RegisterRoute) -> None:
    # Litestar is imported only when the host collects routes, never by merely loading the plugin.
    from invoke_web_console.static_routes import console_asset, console_page

    register(console_page)
    register(console_asset)
