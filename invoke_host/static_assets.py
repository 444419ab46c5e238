"""Plugins' static folders (``invoke_sdk.StaticAssets``), served by the host's own GET-only handlers.

These are the only plugin paths that answer without the access token, and the token middleware knows them by the
handler functions made here (``StaticSite.public``), never by a path or an option a plugin could set. A handler
reads only the declared folder's files, by plain name (no subfolders) and known type, so a request can never reach
outside it; files are kept once read (a few small files that do not change while the server runs) and revalidated
with an ETag (``no-cache``), so an upgraded plugin is picked up without a stale bundle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from invoke_sdk.static_assets import StaticAssets
from litestar import MediaType, Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from invoke_host.security.headers import PAGE_POLICY

__all__ = ["TYPES", "StaticSite", "static_site"]

TYPES = {
    ".js": "text/javascript", ".css": "text/css", ".html": MediaType.HTML, ".svg": "image/svg+xml",
    ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2", ".json": "application/json",
    ".txt": "text/plain", ".map": "application/json",
}
"""The file types served, by name suffix; other files of a folder are not."""


def _folder(assets: StaticAssets) -> Traversable:
    return files(assets.package).joinpath(*assets.folder.split("/"))


class _Files:
    """One declared folder's files, read once each."""

    def __init__(self, assets: StaticAssets) -> None:
        self.assets = assets
        self._read: dict[str, tuple[bytes, str] | None] = {}

    def answer(self, request: Request[Any, Any, Any], name: str) -> Response[bytes]:
        suffix = name[name.rfind("."):] if "." in name else ""
        plain = suffix in TYPES and "/" not in name and "\\" not in name and not name.startswith(".")
        found = self._file(name) if plain else None
        if found is None:
            raise NotFoundException(f"{self.assets.path} has no file named {name[:80]!r}")
        data, etag = found
        headers = {"Cache-Control": "no-cache", "ETag": etag}
        if request.headers.get("if-none-match") == etag:
            # A browser takes a 304's headers into the cached answer, so a page's 304 must carry the page's policy;
            # security_headers_hook chooses by content type, which a 304 has none of, and would give the strict one.
            if suffix == ".html":
                headers["Content-Security-Policy"] = PAGE_POLICY
            return Response(b"", status_code=304, headers=headers)
        return Response(data, media_type=TYPES[suffix], headers=headers)

    def _file(self, name: str) -> tuple[bytes, str] | None:
        if name not in self._read:
            resource = _folder(self.assets).joinpath(name)
            if resource.is_file():
                data = resource.read_bytes()
                self._read[name] = (data, '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"')
            else:
                self._read[name] = None
        return self._read[name]


@dataclass(frozen=True)
class StaticSite:
    """The handlers serving every declared folder, and the functions that answer without the access token."""

    handlers: list[HTTPRouteHandler]
    public: frozenset[Callable[..., Any]]


def _page(folder: _Files, name: str) -> Callable[[Request[Any, Any, Any]], Response[bytes]]:
    def page(request: Request[Any, Any, Any]) -> Response[bytes]:
        return folder.answer(request, name)

    return page


def _handlers(assets: StaticAssets) -> list[HTTPRouteHandler]:
    folder = _Files(assets)

    def asset(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
        return folder.answer(request, name)

    out = [get(f"{assets.path}/{{name:str}}", include_in_schema=False, sync_to_thread=False,
               name=f"static:{assets.path}")(asset)]
    for url, page_name in sorted(assets.pages.items()):
        out.append(get(url, include_in_schema=False, sync_to_thread=False, name=f"static:{url}")(
            _page(folder, page_name)))
    return out


def static_site(declared: Iterable[StaticAssets]) -> StaticSite:
    """Handlers for the registry's accepted declarations (already checked against every other route)."""
    handlers = [h for assets in declared for h in _handlers(assets)]
    return StaticSite(handlers, frozenset(h.fn for h in handlers))
