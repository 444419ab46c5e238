"""Event sinks: what receives every event the host emits (register one with ``register_event_sinks``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from invoke_sdk.encoded_event import EncodedEvent
from invoke_sdk.encoded_run import EncodedEventRun
from invoke_sdk.event_base import BaseEvent

__all__ = [
    "EVENT_SINKS_STATE_KEY",
    "BriefEventRunSink",
    "ConfigurableEventSink",
    "EncodedEventBatchSink",
    "EncodedEventRunSink",
    "EncodedEventSink",
    "EventInbox",
    "EventSink",
    "EventSinkDirectory",
    "ProgressEventRunSink",
    "RelayEventSink",
    "SelectiveEventSink",
]


@runtime_checkable
class EventSink(Protocol):
    """Receives every event the host emits (register one with ``register_event_sinks``).

    ``deliver`` is called on the event loop for each event, in order: it must return at once
    (queue the event and do slow work in a task started in ``start``). An exception it raises
    is logged and does not reach the other sinks or the emitter.
    """

    name: str

    async def start(self) -> None:
        """Called when the host starts, before the first event."""
        ...

    async def stop(self) -> None:
        """Called when the host stops."""
        ...

    def deliver(self, event: BaseEvent) -> None:
        """Take one event; never block."""
        ...


@runtime_checkable
class SelectiveEventSink(EventSink, Protocol):
    """A sink that can say which events it would use right now, so that the host builds no event nobody takes.

    Before building an event that costs something to build (the per-node ``invocation_*`` events, thousands
    per graph), the host asks every sink; when none wants it, the event is not built at all. A sink without
    ``wants`` gets every event. An event that is built still goes to every sink, wanted or not.
    """

    def wants(self, event_name: str) -> bool:
        """Whether an event of this name would be used now (a subscribed client, a log level that shows it).

        Called from any thread (node code runs in worker threads), once per event: keep it a cheap read of
        state the sink keeps up to date, and never block. The answer may change at any time; an event
        emitted while it was False is simply not delivered, as if it had happened before the sink listened.
        """
        ...


@runtime_checkable
class EncodedEventSink(EventSink, Protocol):
    """A sink that can take an event as the message clients receive, without its typed model.

    The host emits the per-node events already encoded (:class:`~invoke_sdk.encoded_event.EncodedEvent`): a sink
    with ``deliver_encoded`` gets them so, and the pydantic model is built only if some other sink needs it. Every
    other event still reaches it through :meth:`~EventSink.deliver`.
    """

    def deliver_encoded(self, event: EncodedEvent) -> None:
        """Take one encoded event (``event.message`` is the wire text; ``event.typed()`` builds the model)."""
        ...


@runtime_checkable
class EncodedEventBatchSink(EncodedEventSink, Protocol):
    """An :class:`EncodedEventSink` that takes a run of encoded events in one call.

    A graph of fast nodes emits its start and completion events by the thousand; the host hands them over in the
    bursts they reach the event loop in, so a sink that forwards bytes (the websocket sink) pays one call per burst
    rather than one per event. Events of other kinds, and the order between them and these, are unchanged: a run
    never crosses an event that goes to :meth:`~EventSink.deliver`.
    """

    def deliver_encoded_batch(self, events: Sequence[EncodedEvent]) -> None:
        """Take a run of encoded events, in the order they were emitted (at least one; never block)."""
        ...


@runtime_checkable
class EncodedEventRunSink(EncodedEventBatchSink, Protocol):
    """An :class:`EncodedEventBatchSink` that takes a whole :class:`~invoke_sdk.encoded_run.EncodedEventRun` at once.

    The host hands a graph's node starts and completions over as runs: one object per burst, whose messages are
    already joined into one text (``run.body``), so that a sink that frames JSON arrays does one step per burst,
    not one per event. A sink without ``deliver_encoded_run`` gets the same events through
    :meth:`~EncodedEventBatchSink.deliver_encoded_batch` (``run.events()``); order is kept either way.
    """

    def deliver_encoded_run(self, run: EncodedEventRun) -> None:
        """Take a run of encoded events of one room, in the order they were emitted (never block)."""
        ...


@runtime_checkable
class BriefEventRunSink(EncodedEventRunSink, SelectiveEventSink, Protocol):
    """A sink some of whose consumers take node events in their brief form (:mod:`invoke_sdk.brief_message`).

    The host asks it for each form apart, and writes a node's start and completion only in the forms some sink wants:
    with nothing but brief consumers, it serializes neither the node nor its output. The full messages come as they
    do to any :class:`EncodedEventRunSink`; the brief ones come as runs of their own (``deliver_brief_run``), never
    to a sink without that method. Events that come typed or as single encoded events come in their full form only:
    such a sink makes the brief form itself (:func:`~invoke_sdk.brief_message.brief_message`).
    """

    def wants_full(self, event_name: str) -> bool:
        """Whether a consumer would use the full message of an event of this name now (for an event without a brief
        form, the same as :meth:`~SelectiveEventSink.wants`). Any thread; a plain read."""
        ...

    def wants_brief(self, event_name: str) -> bool:
        """Whether a consumer would use the brief form of an event of this name now (False for an event without
        one). Any thread; a plain read."""
        ...

    def deliver_brief_run(self, run: EncodedEventRun) -> None:
        """Take a run of events of one room written in their brief form, in the order they were emitted (never
        block): for the consumers that asked for that form only."""
        ...


@runtime_checkable
class ProgressEventRunSink(BriefEventRunSink, Protocol):
    """A :class:`BriefEventRunSink` some of whose consumers take node events as per-item summaries
    (:mod:`invoke_sdk.progress_summary`), not one message per node.

    While :meth:`wants_progress` says so, the host counts each queue item's node starts and completions and hands the
    sink one :class:`~invoke_sdk.progress_summary.InvocationProgressSummaryEvent` per item per delivery of its bus, as a
    run of its own (``deliver_progress_run``), never to a sink without that method. The encoded node events the sink
    gets otherwise (runs, batches, single encoded events) are for its other consumers: the host has counted them
    already. Node events that come typed (``deliver``: relayed from another node) are not counted by this host: such a
    sink makes a one-node summary of each (:func:`~invoke_sdk.progress_summary.progress_summary_message`).
    """

    def wants_progress(self, event_name: str) -> bool:
        """Whether a consumer would use summaries in place of events of this name now (False for events other than
        a node's start and completion). Any thread; a plain read."""
        ...

    def deliver_progress_run(self, run: EncodedEventRun) -> None:
        """Take a run of summaries of one room (one per item), in order with the other events (never block): for
        the consumers that asked for them only."""
        ...


@runtime_checkable
class ConfigurableEventSink(EventSink, Protocol):
    """A sink that wants the host's settings: ``configure`` is called once, before :meth:`EventSink.start`."""

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Take the host's settings (its config as JSON values, without the access token)."""
        ...


@runtime_checkable
class EventInbox(Protocol):
    """The door a :class:`RelayEventSink` brings other nodes' events in through (the host makes one per node)."""

    @property
    def event_types(self) -> Mapping[str, type[BaseEvent]]:
        """Every event class this host knows (its own and the plugins'), by ``event_name``: a relay rebuilds the
        typed event from what it received with ``event_types[name].model_validate_json(data)``."""
        ...

    @property
    def serves_clients(self) -> bool:
        """Whether this node has clients of its own (it serves HTTP): a worker does not, and wants only the few
        events that change what it holds (an image deleted, a model changed on another node); ask :meth:`wants`."""
        ...

    def wants(self, event_name: str) -> bool:
        """Whether a sink of this node other than the relays would use an event of this name now (see
        :meth:`SelectiveEventSink.wants`): if not, the relay need not rebuild it."""
        ...

    def emit_remote(self, event: BaseEvent) -> None:
        """Deliver an event that came from another node to this node's sinks, except the relays: it is never sent
        back out, so two nodes never bounce an event between them. Call it on the event loop, in the order the
        events happened."""
        ...


@runtime_checkable
class RelayEventSink(EventSink, Protocol):
    """A sink that carries this node's events to other nodes and brings theirs in (``invoke-postgres-events``).

    It gets every event emitted on its node through :meth:`~EventSink.deliver`, like any sink, and sends it on;
    what it receives from other nodes it hands to the :class:`EventInbox` given to :meth:`attach`. Events that
    came in that way are delivered to every other sink, never to a relay.
    """

    def attach(self, inbox: EventInbox) -> None:
        """Take this node's inbox; called once, before :meth:`~EventSink.start`."""
        ...


EVENT_SINKS_STATE_KEY = "event_sinks"
"""Where the host keeps its :class:`EventSinkDirectory` in the web app's state (``app.state[...]``).

A plugin route that serves a sink (the websocket sink's ``/ws``) finds its sink there.
"""


@runtime_checkable
class EventSinkDirectory(Protocol):
    """The host's started event sinks, by name (``app.state[EVENT_SINKS_STATE_KEY]``)."""

    def sink(self, name: str) -> EventSink | None:
        """The sink registered under ``name``, if any."""
        ...
