"""The live-events websocket's protocol, both directions, as OpenAPI components and an ``x-websockets`` entry.

OpenAPI has no websocket operations, so the messages are components a generated client gets types for
(``WsClientMessage`` what it sends, ``WsServerFrame`` what a frame it receives holds) and the document's
``x-websockets`` names them for ``/ws``. They are in the document only when a plugin serves ``/ws`` (the first-party
core-events plugin does); the events themselves are the registry's ``AnyEventMessage``. docs/queue.md describes
the protocol in words; tests/test_openapi_contract.py checks real frames of a live socket against these schemas.
"""

from __future__ import annotations

from typing import Any

__all__ = ["WEBSOCKET_PATH", "websocket_components", "websocket_entry"]

WEBSOCKET_PATH = "/ws"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(name: str, event: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": name,
        "type": "object",
        "properties": {"event": {"type": "string", "const": event}, "data": data},
        "required": ["event", "data"],
    }


_ROOM = {
    "type": "object",
    "properties": {"room": {"type": "string", "const": "queue"}, "queue_id": {"type": "string"}},
    "required": ["room", "queue_id"],
}


def _brief(name: str, event: str, cached: bool) -> dict[str, Any]:
    """A node event's brief form (invoke_sdk.brief_message): the full message's data without the node, its output and
    the batch and session ids."""
    properties: dict[str, Any] = {
        "timestamp": {"type": "number"},
        "queue_id": {"type": "string"},
        "item_id": {"type": "integer"},
        "invocation_id": {"type": "string", "description": "The node's id in the execution graph"},
        "invocation_source_id": {"type": "string", "description": "The id of the node in the graph the client sent"},
        "invocation_type": {"type": "string"},
    }
    if cached:
        properties["cached"] = {"type": "boolean", "description": "True when the output came from the output cache"}
    data = {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
    return {**_answer(name, event, data),
            "description": f"{event} for a client that subscribed with node_events: brief"}


def _progress_summary() -> dict[str, Any]:
    """A queue item's summary of node starts and completions (invoke_sdk.progress_summary)."""
    count = {"type": "integer", "minimum": 0}
    properties: dict[str, Any] = {
        "timestamp": {"type": "number"},
        "queue_id": {"type": "string"},
        "item_id": {"type": "integer"},
        "started": {**count, "description": "Node executions begun in this window"},
        "completed": {**count, "description": "Node executions finished in this window"},
        "cached": {**count, "description": "How many of the completed ones came from the output cache"},
        "invocation_source_id": {"type": ["string", "null"],
                                 "description": "The graph node of the window's last completion (null: none)"},
        "invocation_type": {"type": ["string", "null"], "description": "Its node type (null: none completed)"},
    }
    data = {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
    return {**_answer("WsProgressSummary", "invocation_progress_summary", data),
            "description": "For a client that subscribed with node_events: progress, in place of invocation_started "
            "and invocation_complete: per queue item, at most one per delivery of the server's events, counting the "
            "window's node starts and completions (summed over an item's summaries, the nodes it ran)"}


def websocket_components(event_messages: dict[str, str]) -> dict[str, Any]:
    """The protocol's components; ``event_messages`` is ``AnyEventMessage``'s mapping (event name -> ``$ref``)."""
    queue_id = {"type": "string", "minLength": 1, "description": "The queue whose events to get"}
    answers = {"subscribed": "WsSubscribed", "unsubscribed": "WsUnsubscribed", "error": "WsError"}
    mapping = {**event_messages, **{event: _ref(name)["$ref"] for event, name in answers.items()}}
    return {
        "WsSubscribe": {
            "title": "WsSubscribe",
            "type": "object",
            "description": "Get a queue's events from now on; batch: true asks for frames that are arrays, "
            "node_events: brief for nodes' starts and completions without the node and its output, node_events: "
            "progress for per-item counts of them instead",
            "properties": {
                "subscribe": {"type": "string", "const": "queue"},
                "queue_id": queue_id,
                "batch": {"type": "boolean", "description": "Frames carry an array of every message waiting"},
                "node_events": {
                    "type": "string",
                    "enum": ["full", "brief", "progress"],
                    "description": "The form of invocation_started and invocation_complete from now on (full unless "
                    "asked; without the key a subscribe keeps the connection's form): brief is WsBriefNodeMessage, "
                    "progress sends none of them but WsProgressSummary",
                },
            },
            "required": ["subscribe", "queue_id"],
        },
        "WsUnsubscribe": {
            "title": "WsUnsubscribe",
            "type": "object",
            "description": "Stop getting a queue's events",
            "properties": {"unsubscribe": {"type": "string", "const": "queue"}, "queue_id": queue_id},
            "required": ["unsubscribe", "queue_id"],
        },
        "WsClientMessage": {
            "title": "WsClientMessage",
            "description": "What a client sends on /ws, as a text frame holding one JSON object",
            "oneOf": [_ref("WsSubscribe"), _ref("WsUnsubscribe")],
        },
        "WsSubscribed": _answer("WsSubscribed", "subscribed", _ROOM),
        "WsUnsubscribed": _answer("WsUnsubscribed", "unsubscribed", _ROOM),
        "WsError": _answer(
            "WsError",
            "error",
            {
                "type": "object",
                "properties": {
                    "message": {"type": "string", "description": "What was wrong and what to send instead"},
                    "received": {"type": "string", "description": "The start of the message refused"},
                },
                "required": ["message"],
            },
        ),
        "WsServerMessage": {
            "title": "WsServerMessage",
            "description": "One message from the server: an event of a subscribed queue, or an answer to the client",
            "oneOf": [{"$ref": ref} for ref in mapping.values()],
            "discriminator": {"propertyName": "event", "mapping": mapping},
        },
        "WsInvocationStartedBrief": _brief("WsInvocationStartedBrief", "invocation_started", cached=False),
        "WsInvocationCompleteBrief": _brief("WsInvocationCompleteBrief", "invocation_complete", cached=True),
        "WsBriefNodeMessage": {
            "title": "WsBriefNodeMessage",
            "description": "A node's start or completion for a client that subscribed with node_events: brief",
            "oneOf": [_ref("WsInvocationStartedBrief"), _ref("WsInvocationCompleteBrief")],
            "discriminator": {"propertyName": "event", "mapping": {
                "invocation_started": _ref("WsInvocationStartedBrief")["$ref"],
                "invocation_complete": _ref("WsInvocationCompleteBrief")["$ref"]}},
        },
        "WsProgressSummary": _progress_summary(),
        "WsServerFrame": {
            "title": "WsServerFrame",
            "description": "A text frame from the server: one message, or (after subscribing with batch: true) an "
            "array of the messages waiting, in order; node events are WsBriefNodeMessage after node_events: brief, "
            "WsProgressSummary after node_events: progress",
            "anyOf": [_ref("WsServerMessage"), _ref("WsBriefNodeMessage"), _ref("WsProgressSummary"),
                      {"type": "array", "items": {"anyOf": [_ref("WsServerMessage"), _ref("WsBriefNodeMessage"),
                                                            _ref("WsProgressSummary")]},
                       "minItems": 1}],
        },
    }


def websocket_entry() -> dict[str, Any]:
    """The document's ``x-websockets``: where the socket is and which components its messages are."""
    return {
        WEBSOCKET_PATH: {
            "description": "Live events, subscribed per queue (docs/queue.md). Offer the subprotocol "
            "invoke-host.events; a browser sends the access token as a second one, invoke-host.bearer.<token>",
            "subprotocol": "invoke-host.events",
            "client": _ref("WsClientMessage"),
            "server": _ref("WsServerFrame"),
        }
    }
