"""The progress form of node events: per queue item, counts of node starts and completions instead of the nodes.

Brief node events (:mod:`invoke_sdk.brief_message`) cut each message to a few ids, yet a graph of fast nodes still
sends two messages per node: for a 10,000-item iterate, 40,002 messages and 7.7 MB per client, and writing those bytes
to 20 clients alone costs the server about a tenth of the run. A progress view (a bar, a count) needs neither: a
client that subscribes with ``"node_events": "progress"`` gets, per queue item, at most one
:class:`InvocationProgressSummaryEvent` per delivery of the host's event bus (the runs it hands its sinks, every few
milliseconds while nodes run), counting the starts and completions of that window; no per-node message at all. Every
other event (the item's status changes, progress images, errors) is the same as for any client, in the same order: a
summary is delivered before any event emitted after the nodes it counts.

The counts add up: over an item's summaries, ``started`` sums to the node executions begun and ``completed`` to those
finished (``cached`` is how many of those came from the output cache). A summary made from events that reached the
host one by one (relayed from another node) counts that one node (:func:`progress_summary_message`).
"""

from __future__ import annotations

import json
from typing import ClassVar

from pydantic import Field

from invoke_sdk.event_base import BaseEvent

__all__ = ["PROGRESS_SUMMARY_EVENT", "InvocationProgressSummaryEvent", "progress_summary_message"]

PROGRESS_SUMMARY_EVENT = "invocation_progress_summary"
"""The event name of a summary."""


class InvocationProgressSummaryEvent(BaseEvent):
    """What one queue item's nodes did in one delivery window, for a client of ``"node_events": "progress"``.

    Not one of the events every client gets (it is not in ``CORE_EVENTS``): only such clients get it, in place of
    ``invocation_started`` and ``invocation_complete``.
    """

    event_name: ClassVar[str] = PROGRESS_SUMMARY_EVENT

    queue_id: str
    item_id: int
    started: int = Field(ge=0, description="Node executions begun in the window")
    completed: int = Field(ge=0, description="Node executions finished in the window")
    cached: int = Field(ge=0, description="How many of the completed ones came from the output cache")
    invocation_source_id: str | None = Field(
        description="The graph node of the last completion in the window (None when none completed)")
    invocation_type: str | None = Field(description="Its node type (None when none completed)")

    def room(self) -> str | None:
        return f"queue:{self.queue_id}"


def progress_summary_message(message: str) -> str | None:
    """The summary of one ``invocation_started`` or ``invocation_complete`` wire message (full or brief) that reached
    a sink alone: a window of that one node. None for any other message."""
    decoded = json.loads(message)
    if not isinstance(decoded, dict):
        return None
    event = decoded.get("event")
    if event not in ("invocation_started", "invocation_complete"):
        return None
    data = decoded["data"]
    complete = event == "invocation_complete"
    summary = {
        "timestamp": data["timestamp"], "queue_id": data["queue_id"], "item_id": data["item_id"],
        "started": 0 if complete else 1, "completed": 1 if complete else 0,
        "cached": 1 if complete and data.get("cached") else 0,
        "invocation_source_id": data["invocation_source_id"] if complete else None,
        "invocation_type": data["invocation_type"] if complete else None,
    }
    return json.dumps({"event": PROGRESS_SUMMARY_EVENT, "data": summary}, separators=(",", ":"), ensure_ascii=False)
