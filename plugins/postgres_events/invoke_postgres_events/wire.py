"""What one notification carries: a small JSON header, a newline, and the event's JSON (or nothing: the outbox).

The header says which node sent it (``o``), that node's sequence number for it (``s``, one per event, from 1) and
the event's name (``n``); an event too large for NOTIFY (payloads under 8000 bytes) is written to the outbox table
and the header names its row (``x``) instead of carrying the JSON. Pydantic's JSON never holds a raw newline, so
the first one ends the header, and the event is rebuilt with ``model_validate_json`` on the rest, unparsed twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["CHANNEL", "NOTIFY_MAX_BYTES", "Header", "WireError", "encode", "outbox_header", "parse"]

CHANNEL = "invoke_host_events"
"""The one channel every node sends on and listens to."""

NOTIFY_MAX_BYTES = 7999
"""The largest payload PostgreSQL's NOTIFY takes in its default build ("shorter than 8000 bytes")."""


class WireError(ValueError):
    """A notification on our channel that is not ours (another program, another version)."""


@dataclass(frozen=True, slots=True)
class Header:
    origin: str
    seq: int
    name: str
    outbox_id: int | None = None


def encode(origin: str, seq: int, name: str, data: str) -> str:
    """A notification payload carrying the event's JSON (``data``) inline."""
    head = json.dumps({"o": origin, "s": seq, "n": name}, separators=(",", ":"))
    return f"{head}\n{data}"


def outbox_header(origin: str, seq: int, name: str) -> tuple[str, str]:
    """The payload of an event in the outbox, before and after its row id (the database fills that in)."""
    head = json.dumps({"o": origin, "s": seq, "n": name}, separators=(",", ":"))
    return head[:-1] + ',"x":', "}\n"


def parse(payload: str) -> tuple[Header, str | None]:
    """The header and the inline JSON (None when the event is in the outbox)."""
    head, sep, data = payload.partition("\n")
    try:
        fields = json.loads(head)
        header = Header(str(fields["o"]), int(fields["s"]), str(fields["n"]),
                        int(fields["x"]) if fields.get("x") is not None else None)
    except (ValueError, TypeError, KeyError) as exc:
        raise WireError(f"not an event notification: {head[:80]!r}") from exc
    if not sep:
        raise WireError("not an event notification: no newline after the header")
    return header, (None if header.outbox_id is not None else data)
