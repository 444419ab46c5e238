"""The resource limits of one host, read from its settings, and the measure of a value against them.

Graph validation, batch expansion and the engine all bound what one request may make the server hold
with these (docs/engine.md, "Limits"). Every refusal is a :class:`~invoke_sdk.limits.LimitExceededError`
whose message names the setting and its environment variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from types import MappingProxyType
from typing import Any

from invoke_sdk.limits import LimitExceededError
from pydantic import BaseModel

from invoke_host.config import HostConfig

__all__ = ["Limits"]

# Rough JSON sizes of scalars, for the session estimate: exact enough to stop growth, cheap to add up.
_SCALAR_BYTES = 8
_CONTAINER_BYTES = 2


def _defaults() -> dict[str, int]:
    return {f.name: HostConfig.model_fields[f.name].default for f in fields(Limits)}


@dataclass(frozen=True)
class Limits:
    """The limit settings of a host (see ``HostConfig`` for what each bounds)."""

    max_graph_nodes: int
    max_graph_edges: int
    max_collection_size: int
    max_string_length: int
    max_session_nodes: int
    max_session_bytes: int
    max_batch_bytes: int
    max_image_pixels: int

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None = None) -> Limits:
        """The limits in a settings mapping (``HostConfig`` as JSON, like ``context.config``); defaults for the rest."""
        values = _defaults()
        for name in values:
            given = (settings or {}).get(name)
            if isinstance(given, int) and not isinstance(given, bool):
                values[name] = given
        return cls(**values)

    @classmethod
    def from_config(cls, config: HostConfig) -> Limits:
        """The limits of a host's config."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})

    @cached_property
    def context(self) -> Mapping[str, int]:
        """The limits as nodes read them: the validation context of graph validation (see ``invoke_sdk.limits``)."""
        return MappingProxyType(asdict(self))

    def check(self, setting: str, amount: int, what: str) -> None:
        """Raise :class:`LimitExceededError` if ``amount`` exceeds the limit ``setting``."""
        limit: int = getattr(self, setting)
        if amount > limit:
            raise LimitExceededError(what, amount, setting, limit)

    def measure(self, value: Any, what: str, budget: int | None = None) -> int:
        """The rough size of ``value`` as stored JSON, in bytes, checked against the limits on the way.

        Raises :class:`LimitExceededError` for a list, tuple, set or dict longer than
        ``max_collection_size``, a string (or an integer's digits) longer than ``max_string_length``,
        or (when ``budget`` is given) a total past ``budget`` bytes, which is what is left of
        ``max_session_bytes``. Nested values are walked with a stack, and the walk stops as soon as a
        limit is passed, so a huge value costs no more than the limit to refuse.
        """
        max_items = self.max_collection_size
        max_chars = self.max_string_length
        total = 0
        stack: list[Any] = [value]
        pop, push, extend = stack.pop, stack.append, stack.extend
        while stack:
            v = pop()
            t = type(v)
            if t is str:
                if len(v) > max_chars:
                    raise LimitExceededError(f"the length of a string in {what}", len(v), "max_string_length",
                                             max_chars)
                total += len(v) + 2
            elif t is int:
                digits = v.bit_length() * 30103 // 100000 + 1  # about log10(2) digits per bit
                if digits > max_chars:
                    # Its JSON is a string of digits; a chain of multiplications doubles it at every node.
                    raise LimitExceededError(f"the number of digits of an integer in {what}", digits,
                                             "max_string_length", max_chars)
                total += digits
            elif t is list or t is tuple or t is set or t is frozenset or isinstance(v, (list, tuple, set, frozenset)):
                if len(v) > max_items:
                    raise LimitExceededError(f"the number of items of a collection in {what}", len(v),
                                             "max_collection_size", max_items)
                total += len(v) + _CONTAINER_BYTES
                extend(v)
            elif t is dict or isinstance(v, dict):
                if len(v) > max_items:
                    raise LimitExceededError(f"the number of entries of a mapping in {what}", len(v),
                                             "max_collection_size", max_items)
                total += 2 * len(v) + _CONTAINER_BYTES
                extend(v)
                extend(v.values())
            elif isinstance(v, BaseModel):
                data = v.__dict__
                total += 4 * len(data) + _CONTAINER_BYTES
                for name, field_value in data.items():
                    total += len(name)
                    push(field_value)
            elif isinstance(v, str):
                push(str(v))  # a str subclass (an enum value): measured as the str it serializes to
            elif isinstance(v, (bytes, bytearray)):
                if len(v) > max_chars:
                    raise LimitExceededError(f"the length of a byte string in {what}", len(v), "max_string_length",
                                             max_chars)
                total += len(v) * 2
            else:
                total += _SCALAR_BYTES
            if budget is not None and total > budget:
                raise LimitExceededError(
                    f"the size of the session's results with {what}", self.max_session_bytes - budget + total,
                    "max_session_bytes", self.max_session_bytes,
                )
        return total
