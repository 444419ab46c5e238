"""Entry point: declares the console's page (``/``) and assets (``/console/<file>``) for the host to serve.

They are a static folder the host serves itself (``invoke_sdk.static_assets``), not routes of ours: so they answer
without the access token (a browser loads the page before it can send a header) while holding no data; the page
then asks for the token and sends it on every API call and on the websocket.
"""

from __future__ import annotations

from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterStaticAssets
from invoke_sdk.static_assets import StaticAssets

__all__ = ["ASSETS_PATH", "register_static_assets"]

ASSETS_PATH = "/console"
"""Where the console's assets are served."""


@hookimpl
def register_static_assets(register: RegisterStaticAssets) -> None:
    register(StaticAssets(path=ASSETS_PATH, package="invoke_web_console", folder="static", pages={"/": "index.html"}))
