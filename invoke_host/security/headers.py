"""Security headers on every HTTP response: no sniffing, no framing, no referrer, a CSP on pages.

A route that sets one of these headers itself keeps its own value; the hook only fills in what
is missing, so a plugin page that needs a different policy can say so.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from invoke_host.security._asgi import Scope

__all__ = [
    "API_POLICY",
    "PAGE_POLICY",
    "SECURITY_HEADERS",
    "asset_page_policy",
    "favicon_url",
    "security_headers_hook",
]

SECURITY_HEADERS = {
    # Stops a browser from reading JSON (or an image) as HTML or script.
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
"""Headers every HTTP response carries."""

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
"""The CSP of everything that is not a page (JSON, images): it may load nothing and be framed nowhere."""

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The CSP of HTML pages: scripts, styles and data from this server only, no inline script.

``blob:`` images are the console's on a server with a token: it fetches an image with the header and shows the
blob (an ``<img>`` cannot send a header, and the token never goes in a URL); only the page's own script can make
one."""

_HREF = re.compile(r"""href=["']([^"']+)["']""")


def _origins(urls: Iterable[str]) -> list[str]:
    found: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else "'self'"
        if origin not in found:
            found.append(origin)
    return found


def asset_page_policy(*, scripts: Iterable[str], styles: Iterable[str], images: Iterable[str] = ()) -> str:
    """The CSP of a page that loads these assets and runs one inline script (the Swagger UI page).

    The asset origins come from the URLs the page is configured with, so the policy allows
    exactly what the page loads: assets served by this server need only ``'self'``.
    """
    script_src = " ".join(dict.fromkeys(["'self'", *_origins(scripts), "'unsafe-inline'"]))
    style_src = " ".join(dict.fromkeys(["'self'", *_origins(styles), "'unsafe-inline'"]))
    img_src = " ".join(dict.fromkeys(["'self'", "data:", *_origins(images)]))
    return (
        f"default-src 'none'; script-src {script_src}; style-src {style_src}; img-src {img_src}; "
        "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def favicon_url(tag: str) -> list[str]:
    """The URL in a ``<link rel=icon href=...>`` tag, as a list (empty when there is none)."""
    match = _HREF.search(tag)
    return [match.group(1)] if match else []


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.split(b";", 1)[0].strip().lower() in (b"text/html", b"application/xhtml+xml")
    return False


def security_headers_hook(page_policies: Mapping[str, str] | None = None) -> Callable[[Any, Scope], Awaitable[None]]:
    """A Litestar ``before_send`` hook adding :data:`SECURITY_HEADERS` and a CSP where they are missing.

    HTML under a prefix of ``page_policies`` gets that prefix's policy, other HTML
    :data:`PAGE_POLICY`, everything else :data:`API_POLICY`. A hook rather than a middleware:
    Litestar runs middleware only for requests that match a route, and its own 404 and 405
    answers deserve the headers too.
    """
    prefixes = sorted((page_policies or {}).items(), key=lambda kv: -len(kv[0]))

    def page_policy(path: str) -> str:
        for prefix, policy in prefixes:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return policy
        return PAGE_POLICY

    async def add_headers(message: Any, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers", []))
        present = {bytes(name).lower() for name, _ in headers}
        csp = page_policy(scope.get("path", "")) if _is_html(headers) else API_POLICY
        for name, value in (*SECURITY_HEADERS.items(), ("content-security-policy", csp)):
            if name.encode() not in present:
                headers.append((name.encode(), value.encode()))
        message["headers"] = headers

    return add_headers
