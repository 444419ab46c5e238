"""Validation of a node or output given as data, by the class its ``type`` names.

It stands where a ``TypeAdapter`` of the discriminated union of every class stood: the result is the same
instance, and a ``type`` no plugin registered fails with pydantic's own ``union_tag_invalid`` error. Building
that union meant building (and, from the node catalogue, importing) every class of every pack; here only the
class asked for is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from pydantic import BaseModel, ValidationError

from invoke_host.registry.registered import Registered

__all__ = ["TypeDispatch"]


class _Tagged(msgspec.Struct):
    type: Any = None


_tag_decoder = msgspec.json.Decoder(_Tagged)


class TypeDispatch:
    """``validate_python`` and ``validate_json`` over the classes of ``table``, chosen by each value's ``type``."""

    def __init__(self, table: Mapping[str, Registered[type[BaseModel]]], title: str) -> None:
        self._table = table
        self._title = title

    def _class(self, tag: Any, data: Any) -> type[BaseModel]:
        found = self._table.get(tag) if isinstance(tag, str) else None
        if found is not None:
            return found.value
        expected = ", ".join(repr(k) for k in self._table)
        if tag is None:
            error: Any = {"type": "union_tag_not_found", "loc": (), "input": data,
                          "ctx": {"discriminator": "'type'"}}
        else:
            error = {"type": "union_tag_invalid", "loc": (), "input": data,
                     "ctx": {"discriminator": "'type'", "tag": str(tag), "expected_tags": expected}}
        raise ValidationError.from_exception_data(self._title, [error])

    def validate_python(self, data: Any, *, context: Any = None) -> Any:
        """The instance of the class ``data["type"]`` names, validated from ``data``."""
        if isinstance(data, BaseModel):
            tag = getattr(data, "type", None)
            return self._class(tag, data).model_validate(data, context=context)
        tag = data.get("type") if isinstance(data, Mapping) else None
        if not isinstance(data, Mapping):
            raise ValidationError.from_exception_data(self._title, [
                {"type": "model_attributes_type", "loc": (), "input": data}])
        return self._class(tag, data).model_validate(data, context=context)

    def validate_json(self, data: str | bytes | bytearray, *, context: Any = None) -> Any:
        """The instance of the class the JSON object's ``type`` names, validated from the JSON."""
        try:
            tag = _tag_decoder.decode(data).type
        except msgspec.DecodeError:
            tag = None  # not an object, or not JSON: the class's own parse reports it, else the tag is missing
            if self._table:
                return next(iter(self._table.values())).value.model_validate_json(data, context=context)
        return self._class(tag, data).model_validate_json(data, context=context)
