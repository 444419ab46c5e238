"""The brief form of a node's start and completion: which node of which item, without the node and its output.

A graph of fast nodes sends two node events per node, and each full message carries the whole node (its direct
inputs) and the whole output: about 350 bytes for an ``add`` node, 14 MB per client for a 10,000-item iterate. A
progress view needs less: which node instance of which item started or finished, and whether its output came from the
cache. A websocket client opts in when it subscribes (``"node_events": "brief"``); every other client gets the full
messages, unchanged.

A brief message keeps the full message's event name and the order of its fields, and its ``data`` is a strict subset
of the full ``data`` (:data:`BRIEF_FIELDS`): ``timestamp``, ``queue_id``, ``item_id``, ``invocation_id``,
``invocation_source_id``, ``invocation_type``, and ``cached`` for a completion. Left out: ``batch_id`` and
``session_id`` (the item's ``queue_item_status_changed`` events carry them), ``invocation`` and ``result``. Only
:data:`BRIEF_EVENTS` have a brief form; every other event is the same for every client.

An emitter that writes its messages itself writes the brief form from the same parts, without serializing the node or
its output at all; :func:`brief_message` makes it from a full message, for events that arrive typed or full only.
"""

from __future__ import annotations

import json

__all__ = ["BRIEF_EVENTS", "BRIEF_FIELDS", "NODE_EVENT_FORMS", "brief_message"]

BRIEF_EVENTS = frozenset({"invocation_started", "invocation_complete"})
"""The events that have a brief form."""

BRIEF_FIELDS = frozenset({
    "timestamp", "queue_id", "item_id", "invocation_id", "invocation_source_id", "invocation_type", "cached"})
"""The keys of ``data`` a brief message keeps (``cached`` only for ``invocation_complete``)."""

NODE_EVENT_FORMS = ("full", "brief", "progress")
"""What a websocket client may ask for in ``"node_events"`` when it subscribes (``full`` unless it asks; ``progress``:
per-item summaries instead of node events, :mod:`invoke_sdk.progress_summary`)."""


def brief_message(message: str) -> str:
    """The brief form of the full wire message of a :data:`BRIEF_EVENTS` event (``{"event":...,"data":{...}}``):
    the same text an emitter writes from parts (compact, non-ASCII as it is); any other message comes back as it is."""
    decoded = json.loads(message)
    if not isinstance(decoded, dict) or decoded.get("event") not in BRIEF_EVENTS:
        return message
    data = decoded["data"]
    brief = {key: value for key, value in data.items() if key in BRIEF_FIELDS}
    return json.dumps({"event": decoded["event"], "data": brief}, separators=(",", ":"), ensure_ascii=False)
