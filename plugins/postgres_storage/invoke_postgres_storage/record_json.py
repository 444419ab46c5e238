"""An image record's JSON written by PostgreSQL, byte for byte the host's encoding of the record
(``invoke_sdk.image_json_pages``): the listing's fast path, with no row turned into a Python object.

Built by concatenation, not ``json_build_object`` (whose output has spaces after the colons and commas, unlike the
host's compact encoding). Strings go through ``to_json(...)::text``, which escapes what msgspec does (``"``,
``\\``, the control characters, ``\\b\\t\\n\\f\\r`` short, the rest as ``\\u00xx``; everything else as UTF-8).
Timestamps are written in UTC as pydantic writes an aware datetime: microseconds when they are not zero, then
``Z``. A timestamp outside the years 1-9999 (which Python's datetime cannot hold) makes the whole text NULL
(``||`` with NULL is NULL), and the store answers None for the page: the host lists it the typed way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache

from invoke_sdk.image_json_pages import NameField

__all__ = ["record_json_columns"]


def _literal(text: str) -> str:
    """``text`` as an SQL string literal inside a statement that psycopg formats (so ``%`` is doubled)."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def _stamp(column: str) -> str:
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"(CASE WHEN {column} >= '0001-01-01T00:00:00Z' AND {column} < '10000-01-01T00:00:00Z' THEN "
        f"'\"' || to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN to_char({utc}, 'US') = '000000' "
        f"THEN '' ELSE '.' || to_char({utc}, 'US') END || 'Z\"' END)"
    )


def _flag(column: str) -> str:
    return f"(CASE WHEN {column} THEN 'true' WHEN NOT {column} THEN 'false' END)"


def _text(column: str) -> str:
    return f"COALESCE(to_json({column})::text, 'null')"


def record_json_columns(name_fields: Sequence[NameField] = ()) -> str:
    """The columns a listing page reads for ``get_many_json``: the cursor's (``starred``, ``created_at``) and the
    record's JSON text as ``_json``, the ``name_fields`` after the record's own fields."""
    return _columns(tuple(name_fields))


# Built once per set of name fields (the host has one), so the statement's text repeats for the server too.
@lru_cache(maxsize=16)
def _columns(name_fields: tuple[NameField, ...]) -> str:
    parts = [
        ("image_name", _text("image_name")),
        ("image_origin", _text("image_origin")),
        ("image_category", _text("image_category")),
        ("width", "width::text"),
        ("height", "height::text"),
        ("session_id", _text("session_id")),
        ("node_id", _text("node_id")),
        ("is_intermediate", _flag("is_intermediate")),
        ("starred", _flag("starred")),
        ("has_workflow", _flag("has_workflow")),
        ("created_at", _stamp("created_at")),
        ("updated_at", _stamp("updated_at")),
        # Every listing reads only rows whose deleted_at IS NULL.
        ("deleted_at", "'null'"),
        *((f.key, f"to_json({_literal(f.prefix)} || image_name || {_literal(f.suffix)})::text") for f in name_fields),
    ]
    keys = [_literal(("{" if i == 0 else ",") + json.dumps(key, ensure_ascii=False) + ":") for i, (key, _) in
            enumerate(parts)]
    text = " || ".join(f"{k} || {v}" for k, (_, v) in zip(keys, parts, strict=True))
    return f"starred, created_at, ({text} || '}}') AS _json"
