"""The console's page and assets, read from the package's ``static/`` folder.

Only the files of that folder with a known type are served, by plain name (no subfolders), so a request can
never reach outside it. The page loads its script and styles from this server (the host's page policy allows
``'self'`` only, no inline script), and the assets are revalidated on each load (``no-cache`` with an ETag), so
an upgraded plugin is picked up without a stale bundle.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files

from litestar import MediaType, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

__all__ = ["ASSETS_PATH", "console_asset", "console_page"]

ASSETS_PATH = "/console"
"""Where the console's assets are served."""

_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png",
          ".html": MediaType.HTML}


@cache
def _asset(name: str) -> tuple[bytes, str] | None:
    # Kept once read: a few small files that never change while the server runs.
    resource = files("invoke_web_console").joinpath("static", name)
    if not resource.is_file():
        return None
    data = resource.read_bytes()
    return data, '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


def _answer(request: Request, name: str) -> Response[bytes]:  # type: ignore[type-arg]
    suffix = name[name.rfind("."):] if "." in name else ""
    found = _asset(name) if suffix in _TYPES and "/" not in name and "\\" not in name else None
    if found is None:
        raise NotFoundException(f"the console has no file named {name[:80]!r}")
    data, etag = found
    headers = {"Cache-Control": "no-cache", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(data, media_type=_TYPES[suffix], headers=headers)


@get("/", include_in_schema=False, sync_to_thread=False, name="console_page")
def console_page(request: Request) -> Response[bytes]:  # type: ignore[type-arg]
    """The console's single page; the views are chosen by the URL's fragment (``#/gallery``, ``#/queue`` ...)."""
    return _answer(request, "index.html")


@get(f"{ASSETS_PATH}/{{name:str}}", include_in_schema=False, sync_to_thread=False, name="console_asset")
def console_asset(request: Request, name: FromPath[str]) -> Response[bytes]:  # type: ignore[type-arg]
    """One of the console's files (``app.js``, ``app.css`` ...)."""
    return _answer(request, name)
