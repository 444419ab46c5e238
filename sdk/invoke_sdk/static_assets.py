"""Static assets: a folder of files inside a plugin's package that the host itself serves, without the access token.

A browser cannot send a bearer header when it opens a page or loads its script, so a web front end's shell must
answer without the token. A plugin cannot make a route of its own public (its routes stay behind the token
whatever options they carry); it declares a :class:`StaticAssets` folder instead, and the host serves that
folder's files with its own GET-only handler, which reads nothing but those files. The host refuses a declaration
whose paths reach into its own (``/api``, ``/schema``, ``/ws`` ...) or overlap a route already taken, and lists
what each plugin made public in ``invoke-host plugins --json`` (``registered["static_assets"]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["StaticAssets"]

_SEGMENT = re.compile(r"^[A-Za-z0-9_.\-]+$")
_FILE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")
_PACKAGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _plain_path(path: str, what: str, *, root_ok: bool) -> None:
    if path == "/" and root_ok:
        return
    segments = path.split("/")
    if not path.startswith("/") or path.endswith("/") or not all(_SEGMENT.match(s) for s in segments[1:]) or any(
        s in (".", "..") for s in segments
    ):
        raise ValueError(
            f"{what} {path!r} is not a plain path: '/' then segments of letters, digits, '_', '.' or '-' "
            "(no parameters, no trailing '/')"
        )


@dataclass(frozen=True)
class StaticAssets:
    """A folder of files the host serves at ``path``, GET only and without the access token.

    Each file directly in the folder (no subfolders) whose name ends in a type the host knows (``.js``, ``.css``,
    ``.html``, ``.svg``, ``.png``, ``.ico``, ``.woff2``, ``.json``, ``.txt``, ``.map``) is served at
    ``<path>/<name>``, revalidated with an ETag. ``pages`` maps further URL paths (``"/"``, say) to a file of the
    folder served at exactly that path. Put no data in these files: anyone who can reach the server reads them.
    """

    path: str
    """Where the files are served: ``/console`` serves ``app.js`` at ``/console/app.js``."""
    package: str
    """The import name of the package that holds the folder (``invoke_web_console``)."""
    folder: str = "static"
    """The folder inside ``package``."""
    pages: Mapping[str, str] = field(default_factory=dict)
    """URL path -> file name of the folder, served at exactly that path (``{"/": "index.html"}``)."""

    def __post_init__(self) -> None:
        _plain_path(self.path, "the static assets path", root_ok=False)
        if not _PACKAGE.match(self.package):
            raise ValueError(f"package {self.package!r} is not an import name")
        if not all(_FILE.match(s) for s in self.folder.split("/")):
            raise ValueError(f"folder {self.folder!r} is not a plain folder name inside the package")
        for url, name in self.pages.items():
            _plain_path(url, "the page path", root_ok=True)
            if not _FILE.match(name):
                raise ValueError(f"page {url!r} names {name!r}, which is not a plain file name of the folder")

    def describe(self) -> str:
        """What this makes public, as ``invoke-host plugins`` lists it."""
        pages = "".join(f", GET {url} ({name})" for url, name in sorted(self.pages.items()))
        return f"GET {self.path}/<file> ({self.package}/{self.folder}){pages}"
