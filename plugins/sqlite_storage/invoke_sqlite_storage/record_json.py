"""An image record's JSON written by SQLite, byte for byte the host's encoding of the record
(``invoke_sdk.image_json_pages``): the listing's fast path, with no row turned into a Python object.

One ``printf`` per row (a chain of ``||`` allocates a string per step, and took half again as long). Strings go
through ``json_quote``, which escapes exactly what msgspec does (``"``, ``\\``, the control characters,
``\\b\\t\\n\\f\\r`` short, the rest as ``\\u00xx``; everything else as UTF-8). The store writes timestamps as
``strftime('%Y-%m-%dT%H:%M:%fZ')`` (milliseconds); pydantic reads that and writes the microseconds, or none when
they are zero, so ``.120Z`` becomes ``.120000Z`` and ``.000Z`` is left out. A row holding any value outside those
forms (a timestamp written another way, a flag that is not 0 or 1, a size that is not an integer, a number where
text belongs) gets NULL instead, and the store answers None for the page: the host lists it the typed way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache

from invoke_sdk.image_json_pages import NameField

__all__ = ["record_json_columns"]

_STAMP = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]Z"
# What the row must hold for the text to be the host's: anything else is left to the typed listing.
_PLAIN = (
    f"created_at GLOB '{_STAMP}' AND updated_at GLOB '{_STAMP}' AND is_intermediate IN (0, 1) AND starred IN (0, 1) "
    "AND has_workflow IN (0, 1) AND typeof(width) = 'integer' AND typeof(height) = 'integer' "
    "AND typeof(image_name) = 'text' AND typeof(image_origin) = 'text' AND typeof(image_category) = 'text' "
    "AND (session_id IS NULL OR typeof(session_id) = 'text') AND (node_id IS NULL OR typeof(node_id) = 'text')"
)


def _literal(text: str) -> str:
    """``text`` as an SQL string literal (the host's URL parts: constants, but quoted properly all the same)."""
    return "'" + text.replace("'", "''") + "'"


def _stamp(column: str) -> str:
    # Only for the GLOB's form: '.fffZ' -> '.fff000Z', and a zero fraction left out.
    return f"replace(replace({column}, 'Z', '000Z'), '.000000Z', 'Z')"


def _flag(column: str) -> str:
    return f"iif({column}, 'true', 'false')"


def record_json_columns(name_fields: Sequence[NameField] = ()) -> str:
    """The columns a listing page reads for ``get_many_json``: the cursor's (``starred``, ``created_at``) and the
    record's JSON text as ``_json``, the ``name_fields`` after the record's own fields."""
    return _columns(tuple(name_fields))


# Built once per set of name fields (the host has one): the text is long, and the same text is what lets
# sqlite3's statement cache reuse the prepared page statement.
@lru_cache(maxsize=16)
def _columns(name_fields: tuple[NameField, ...]) -> str:
    parts = [
        ("image_name", "%s", "json_quote(image_name)"),
        ("image_origin", "%s", "json_quote(image_origin)"),
        ("image_category", "%s", "json_quote(image_category)"),
        ("width", "%d", "width"),
        ("height", "%d", "height"),
        ("session_id", "%s", "json_quote(session_id)"),  # NULL: 'null'
        ("node_id", "%s", "json_quote(node_id)"),
        ("is_intermediate", "%s", _flag("is_intermediate")),
        ("starred", "%s", _flag("starred")),
        ("has_workflow", "%s", _flag("has_workflow")),
        ("created_at", '"%s"', _stamp("created_at")),
        ("updated_at", '"%s"', _stamp("updated_at")),
        # Every listing reads only rows whose deleted_at IS NULL.
        ("deleted_at", "null", None),
        *((f.key, "%s", f"json_quote({_literal(f.prefix)} || image_name || {_literal(f.suffix)})")
          for f in name_fields),
    ]
    # Keys go into printf's format, so a % in one is doubled; values are arguments, never part of the format.
    fmt = ",".join(f"{json.dumps(key, ensure_ascii=False).replace('%', '%%')}:{spec}" for key, spec, _ in parts)
    args = ", ".join(arg for _, _, arg in parts if arg is not None)
    return f"starred, created_at, CASE WHEN {_PLAIN} THEN printf({_literal('{' + fmt + '}')}, {args}) END AS _json"
