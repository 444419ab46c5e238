"""Several encoded events of one room, in order, held as one text: what a sink that forwards bytes takes whole.

A graph of fast nodes emits two events per node, tens of thousands per graph. Even written straight to their wire
text (:class:`~invoke_sdk.encoded_event.EncodedEvent`), one object per event cost the host its creation, a queue
slot, a decode, a measure and an append per event and per set of clients. An :class:`EncodedEventRun` is made once
per burst: the messages' UTF-8 parts joined with ``,`` in one call and decoded once (:attr:`body`), so that a sink
that frames JSON arrays (the websocket sink's batching clients) adds a whole burst to a frame in one step. A sink
that takes events one by one gets :meth:`events`, made on first use from the same parts; the texts and their order
are exactly those of the events the run was made from.
"""

from __future__ import annotations

from collections.abc import Sequence

from invoke_sdk.encoded_event import EncodedEvent
from invoke_sdk.event_base import BaseEvent

__all__ = ["EncodedEventRun"]


class EncodedEventRun:
    """Encoded events of one ``room``, in order: ``classes[i]`` is the typed class of the message ``parts[i]``.

    ``parts`` are each a whole wire message (``{"event":...,"data":...}``) as UTF-8 bytes. An instance is
    immutable once made; share it freely.
    """

    __slots__ = ("_classes", "_events", "_messages", "_parts", "body", "count", "room", "size")

    def __init__(self, room: str | None, classes: Sequence[type[BaseEvent]], parts: Sequence[bytes]) -> None:
        if len(classes) != len(parts) or not parts:
            raise ValueError("a run holds at least one message, and one class per message")
        self.room = room
        """Who gets every event of the run (the typed events' :meth:`~invoke_sdk.event_base.BaseEvent.room`)."""
        self.count = len(parts)
        """How many messages the run holds."""
        joined = b",".join(parts)
        self.size = len(joined)
        """UTF-8 bytes of :attr:`body`."""
        self.body = joined.decode()
        """The messages joined with ``,``: a JSON array's contents."""
        self._classes = tuple(classes)
        self._parts = tuple(parts)
        self._messages: list[str] | None = None
        self._events: list[EncodedEvent] | None = None

    @property
    def event_names(self) -> frozenset[str]:
        """The names of the events in the run."""
        return frozenset(cls.event_name for cls in self._classes)

    def messages(self) -> list[str]:
        """Each message's text, in order (made on the first call, then kept)."""
        messages = self._messages
        if messages is None:
            messages = self._messages = [part.decode() for part in self._parts]
        return messages

    def events(self) -> list[EncodedEvent]:
        """The run as one :class:`~invoke_sdk.encoded_event.EncodedEvent` per message (made on the first call, then
        kept), for sinks that take events one by one; a typed model is read back from its message if asked for."""
        events = self._events
        if events is None:
            room = self.room
            events = self._events = [EncodedEvent.written(cls, room, message)
                                     for cls, message in zip(self._classes, self.messages(), strict=True)]
        return events
