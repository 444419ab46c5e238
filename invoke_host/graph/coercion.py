"""Numbers written for text inputs become their text ("5", "2.5"), as InvokeAI's nodes take them.

InvokeAI's ``BaseInvocation`` validates with pydantic's ``coerce_numbers_to_str``; ours does not (the SDK's
nodes stay strict for pack authors' own use), so validation retries a node whose only trouble is a number
where text belongs, with those inputs converted the way pydantic's option converts them: at any depth of
the input's own type (``str | None``, ``list[str]``), never inside a nested model (which keeps its own
rules, as in InvokeAI), never a bool.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from invoke_sdk import BaseInvocation
from pydantic import ConfigDict, PydanticUserError, TypeAdapter, ValidationError

__all__ = ["numbers_as_text"]

_COERCING = ConfigDict(coerce_numbers_to_str=True)


@lru_cache(maxsize=4096)
def _text_adapter(cls: type[BaseInvocation], name: str) -> TypeAdapter[Any] | None:
    annotation = cls.model_fields[name].annotation
    if annotation is None:
        return None
    try:
        return TypeAdapter(annotation, config=_COERCING)
    except PydanticUserError:
        return None  # the input is itself a model: its own config decides, so nothing is converted


def numbers_as_text(
    cls: type[BaseInvocation], values: Mapping[str, Any], error: ValidationError
) -> dict[str, Any] | None:
    """``values`` with each input that ``error`` refused for holding a number where text belongs converted to
    text; None when there is no such input (or converting it does not help)."""
    names = {
        str(err["loc"][0]) for err in error.errors(include_url=False)
        if err["type"] == "string_type" and type(err["input"]) in (int, float) and err["loc"]
        and err["loc"][0] in cls.model_fields and err["loc"][0] in values
    }
    converted = dict(values)
    changed = False
    for name in names:
        adapter = _text_adapter(cls, name)
        if adapter is None:
            continue
        try:
            converted[name] = adapter.validate_python(values[name])
        except ValidationError:
            continue  # something else is wrong with it too: the node's own error says what
        changed = True
    return converted if changed else None
