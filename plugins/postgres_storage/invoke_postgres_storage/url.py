"""Database URLs as they may be shown: with the password masked, so that it never reaches a log or a message."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["is_postgres_url", "masked_url"]

_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return urlsplit(url).scheme in _SCHEMES


def masked_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; the rest as given, so a person can tell which it is.

    A ``password=`` query parameter is masked too (libpq reads one there as well).
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a database URL that cannot be parsed>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if ":" in userinfo:
            netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    query = "&".join(
        f"{key}=***" if key.lower() == "password" else pair
        for pair in parts.query.split("&") if pair
        for key in (pair.split("=", 1)[0],)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
