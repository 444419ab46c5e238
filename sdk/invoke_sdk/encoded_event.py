"""An event already encoded as the message clients receive, whose typed model is built only if a sink asks.

The per-node events come by the ten thousand in one graph. A sink that only forwards bytes (the websocket sink)
needs the wire text, not the pydantic model: building and validating the model and then encoding it cost several
times more than writing the same JSON from parts. An emitter that can write the message itself hands the bus an
:class:`EncodedEvent`; sinks that implement :class:`~invoke_sdk.event_sinks.EncodedEventSink` take it as it is,
every other sink gets :meth:`EncodedEvent.typed`, built once, on first use. The text is exactly what
:func:`encode_message` makes of the typed event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import cast

from invoke_sdk.event_base import BaseEvent

__all__ = ["EncodedEvent", "encode_message"]


def encode_message(event: BaseEvent) -> str:
    """The message a client receives for ``event``: ``{"event":<name>,"data":<the model as JSON>}``, compact."""
    return f'{{"event":{json.dumps(event.event_name)},"data":{event.model_dump_json()}}}'


class EncodedEvent:
    """An event as its wire message (``message``), with its name and room, and its typed model on demand.

    ``build`` makes the typed event the message was written from (same payload, same timestamp); it runs at most
    once, the first time :meth:`typed` is called. An instance is immutable once made; share it freely.
    :meth:`written` makes one whose typed event, if ever asked for, is read back from the message itself.
    """

    __slots__ = ("_build", "_typed", "event_name", "message", "room")

    def __init__(self, event_name: str, room: str | None, message: str,
                 build: Callable[[], BaseEvent] | type[BaseEvent]) -> None:
        self.event_name = event_name
        """The event's name (the typed class's ``event_name``)."""
        self.room = room
        """Who gets it: the typed event's :meth:`~invoke_sdk.event_base.BaseEvent.room`."""
        self.message = message
        """``{"event": name, "data": payload}`` as compact JSON text: what a client receives."""
        self._build = build
        """A callable that builds the typed event, or its class (:meth:`written`: read back from the message)."""
        self._typed: BaseEvent | None = None

    @classmethod
    def written(cls, event_class: type[BaseEvent], room: str | None, message: str) -> EncodedEvent:
        """An event its emitter wrote as its message (exactly what :func:`encode_message` makes of the typed event);
        :meth:`typed`, if a sink ever asks, validates the message's ``data`` as ``event_class``.

        For emitters of many events that no sink needs typed: the event holds nothing but its text, where a ``build``
        callable holds the objects it was written from (a closure and its cells per event, which the garbage
        collector then walks, about a third of what a 10,000-node graph's events cost the server).
        """
        return cls(event_class.event_name, room, message, event_class)

    @classmethod
    def of(cls, event: BaseEvent) -> EncodedEvent:
        """An already built typed event, encoded with :func:`encode_message`."""
        encoded = cls(event.event_name, event.room(), encode_message(event), lambda: event)
        encoded._typed = event
        return encoded

    def typed(self) -> BaseEvent:
        """The typed event (built on the first call, then kept)."""
        # Two threads asking at once may both build it: the same payload either way, so no lock is taken.
        typed = self._typed
        if typed is None:
            build = self._build
            if isinstance(build, type) and issubclass(build, BaseEvent):
                # {"event":<name>,"data":<payload>}: the payload is what lies between the prefix and the last brace.
                prefix = f'{{"event":{json.dumps(self.event_name)},"data":'
                typed = build.model_validate_json(self.message[len(prefix):-1])
            else:
                typed = cast("Callable[[], BaseEvent]", build)()
            self._typed = typed
        return typed

    @property
    def is_built(self) -> bool:
        """Whether the typed event exists yet (a sink that needs it made it, or the emitter did)."""
        return self._typed is not None

