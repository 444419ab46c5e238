"""An image record's JSON written by SQLite, byte for byte the host's encoding of the record
(``invoke_sdk.image_json_pages``): the listing's fast path, with no row turned into a Python object.

Strings go through ``json_quote``, which escapes exactly what msgspec does (``"``, ``\\``, the control characters,
``\\b\\t\\n\\f\\r`` short, the rest as ``\\u00xx``; everything else as UTF-8). The store writes timestamps as
``strftime('%Y-%m-%dT%H:%M:%fZ')`` (milliseconds); pydantic reads that and writes the microseconds, or none when
they are zero, so ``.120Z`` becomes ``.120000Z`` and ``.000Z`` is left out. Any value outside those forms (a
timestamp written another way, a flag that is not 0 or 1, a size that is not an integer) makes the whole text
NULL (``||`` with NULL is NULL), and the store answers None for the page: the host lists it the typed way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache

from invoke_sdk.image_json_pages import NameField

__all__ = ["record_json_columns"]

_STAMP = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]Z"


def _literal(text: str) -> str:
    """``text`` as an SQL string literal (the host's URL parts: constants, but quoted properly all the same)."""
    return "'" + text.replace("'", "''") + "'"


def _stamp(column: str) -> str:
    # The GLOB keeps out every other spelling (a space for the T, an offset, more digits): those fall back.
    return (
        f"(CASE WHEN {column} GLOB '{_STAMP}' THEN '\"' || CASE WHEN substr({column}, 20, 4) = '.000' "
        f"THEN substr({column}, 1, 19) ELSE substr({column}, 1, 23) || '000' END || 'Z\"' END)"
    )


def _flag(column: str) -> str:
    return f"(CASE {column} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)"


def _integer(column: str) -> str:
    return f"(CASE WHEN typeof({column}) = 'integer' THEN {column} END)"


def _text(column: str) -> str:
    # A NULL column is JSON null, a text one a JSON string; anything else (a number stored there) falls back.
    return f"(CASE WHEN {column} IS NULL THEN 'null' WHEN typeof({column}) = 'text' THEN json_quote({column}) END)"


def record_json_columns(name_fields: Sequence[NameField] = ()) -> str:
    """The columns a listing page reads for ``get_many_json``: the cursor's (``starred``, ``created_at``) and the
    record's JSON text as ``_json``, the ``name_fields`` after the record's own fields."""
    return _columns(tuple(name_fields))


# Built once per set of name fields (the host has one): the text is long, and the same text is what lets
# sqlite3's statement cache reuse the prepared page statement.
@lru_cache(maxsize=16)
def _columns(name_fields: tuple[NameField, ...]) -> str:
    parts = [
        ("image_name", _text("image_name")),
        ("image_origin", _text("image_origin")),
        ("image_category", _text("image_category")),
        ("width", _integer("width")),
        ("height", _integer("height")),
        ("session_id", _text("session_id")),
        ("node_id", _text("node_id")),
        ("is_intermediate", _flag("is_intermediate")),
        ("starred", _flag("starred")),
        ("has_workflow", _flag("has_workflow")),
        ("created_at", _stamp("created_at")),
        ("updated_at", _stamp("updated_at")),
        # Every listing reads only rows whose deleted_at IS NULL.
        ("deleted_at", "'null'"),
        *((f.key, f"json_quote({_literal(f.prefix)} || image_name || {_literal(f.suffix)})") for f in name_fields),
    ]
    keys = [_literal(("{" if i == 0 else ",") + _key(key) + ":") for i, (key, _) in enumerate(parts)]
    text = " || ".join(f"{k} || {v}" for k, (_, v) in zip(keys, parts, strict=True))
    return f"starred, created_at, ({text} || '}}') AS _json"


def _key(key: str) -> str:
    # Keys are the model's field names and the host's: plain ASCII, but encoded properly all the same.
    return json.dumps(key, ensure_ascii=False)
