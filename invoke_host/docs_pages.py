"""The pages a person opens in a browser: the interactive API docs at ``/schema`` and a start page at ``/``.

Both work with no internet: Swagger UI's files come from the ``swagger-ui-bundle-v2`` distribution and are served
by this server under :data:`SWAGGER_ASSETS` (Litestar's default loads them from a CDN, and the docs page was blank
offline). Under ``/schema`` they answer without the access token, like the document itself.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from litestar import MediaType, Response, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.params import FromPath
from swagger_ui_bundle import swagger_ui_path

import invoke_host
from invoke_host.api_versions import API_V1

__all__ = ["SWAGGER_ASSETS", "docs_routes", "swagger_plugin"]

SWAGGER_ASSETS = "/schema/swagger-ui"
"""Where Swagger UI's files are served."""


def swagger_plugin() -> SwaggerRenderPlugin:
    """Swagger UI at ``/schema``, its scripts, styles and icon from :data:`SWAGGER_ASSETS`."""
    return SwaggerRenderPlugin(
        path="/",
        js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_ASSETS}/favicon-32x32.png'>",
    )


_LINKS = (
    ("/schema", "Interactive API docs", "every operation, tried from the browser"),
    ("/schema/openapi.json", "OpenAPI document", "for client generators (openapi-typescript, openapi-python-client)"),
    (f"{API_V1}/nodes", "Node types", "a template per installed node"),
    (f"{API_V1}/plugins", "Plugins", "what loaded, what failed and why"),
    (f"{API_V1}/app/version", "Version", "server and SDK"),
)


def _start_page_html() -> str:
    items = "\n".join(
        f'<li><a href="{href}">{html.escape(title)}</a>: {html.escape(what)}</li>' for href, title, what in _LINKS
    )
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>Invoke Host</title></head><body>\n"
        f"<h1>Invoke Host {html.escape(invoke_host.__version__)}</h1>\n"
        "<p>A node server for image-generation graphs. Live events: a websocket at <code>/ws</code>.</p>\n"
        f"<ul>\n{items}\n</ul>\n</body></html>\n"
    )


@get("/", include_in_schema=False, sync_to_thread=False, media_type=MediaType.HTML)
def start_page() -> Response[str]:
    return Response(_START_PAGE, media_type=MediaType.HTML)


_START_PAGE = _start_page_html()


_ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".map": "application/json"}


@cache
def _asset(name: str) -> bytes | None:
    # Kept once read: a few files, about 1.5 MB in all, that never change while the server runs.
    path = Path(swagger_ui_path) / name
    return path.read_bytes() if path.is_file() else None


@get(f"{SWAGGER_ASSETS}/{{name:str}}", include_in_schema=False, sync_to_thread=False)
def swagger_asset(name: FromPath[str]) -> Response[bytes]:
    """One of Swagger UI's files (only plain names of the bundle's folder: no subfolders, no other types)."""
    media_type = _ASSET_TYPES.get(Path(name).suffix)
    data = _asset(name) if media_type is not None and Path(name).name == name else None
    if data is None:
        raise NotFoundException(f"Swagger UI has no file named {name[:80]!r}")
    return Response(data, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


def docs_routes(plugin_routes: Sequence[Any]) -> list[HTTPRouteHandler]:
    """Swagger UI's files, and the start page unless a plugin serves ``/`` (a console, say)."""
    taken = {path for handler in plugin_routes for path in getattr(handler, "paths", ())}
    return [swagger_asset] if "/" in taken else [swagger_asset, start_page]
