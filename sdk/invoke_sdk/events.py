"""Typed events: what the host tells clients and sinks while it works.

Each event is a pydantic model with a class-level :attr:`BaseEvent.event_name` and a ``build(...)``
classmethod that takes the few objects it needs and decides the payload; services emit
``SomeEvent.build(...)`` and never assemble dicts. Clients receive ``{"event": name, "data": payload}``.

Plugins add event classes through the ``register_events`` hook and receive every event through an
:class:`EventSink` registered with ``register_event_sinks``. The host's own events (:data:`CORE_EVENTS`)
are always registered.

This module is the door plugin authors import from; the classes are defined one concept per module
below it: the base (:mod:`invoke_sdk.event_base`), the sinks (:mod:`invoke_sdk.event_sinks`), the queue
and node vocabularies (:mod:`invoke_sdk.queue_events`, :mod:`invoke_sdk.invocation_events`) and the
model vocabularies (:mod:`invoke_sdk.models.install_events`, :mod:`invoke_sdk.models.load_events`).
Those never import this module, so :data:`CORE_EVENTS` is assembled here from all of them, one way.
"""

from __future__ import annotations

from invoke_sdk.brief_message import BRIEF_EVENTS, BRIEF_FIELDS, NODE_EVENT_FORMS, brief_message
from invoke_sdk.encoded_event import EncodedEvent, encode_message
from invoke_sdk.encoded_run import EncodedEventRun
from invoke_sdk.event_base import BaseEvent
from invoke_sdk.event_sinks import (
    EVENT_SINKS_STATE_KEY,
    BriefEventRunSink,
    ConfigurableEventSink,
    EncodedEventBatchSink,
    EncodedEventRunSink,
    EncodedEventSink,
    EventInbox,
    EventSink,
    EventSinkDirectory,
    ProgressEventRunSink,
    RelayEventSink,
    SelectiveEventSink,
)
from invoke_sdk.invocation_events import (
    InvocationCompleteEvent,
    InvocationErrorEvent,
    InvocationEventBase,
    InvocationProgressEvent,
    InvocationStartedEvent,
    ProgressImage,
)
from invoke_sdk.models.install_events import MODEL_INSTALL_EVENTS
from invoke_sdk.models.load_events import MODEL_LOAD_EVENTS
from invoke_sdk.progress_summary import (
    PROGRESS_SUMMARY_EVENT,
    InvocationProgressSummaryEvent,
    progress_summary_message,
)
from invoke_sdk.queue_events import (
    BatchEnqueuedEvent,
    QueueClearedEvent,
    QueueEventBase,
    QueueItemEventBase,
    QueueItemsCanceledEvent,
    QueueItemStatusChangedEvent,
)

__all__ = [
    "BRIEF_EVENTS",
    "BRIEF_FIELDS",
    "CORE_EVENTS",
    "EVENT_SINKS_STATE_KEY",
    "NODE_EVENT_FORMS",
    "PROGRESS_SUMMARY_EVENT",
    "BaseEvent",
    "BatchEnqueuedEvent",
    "BriefEventRunSink",
    "ConfigurableEventSink",
    "EncodedEvent",
    "EncodedEventBatchSink",
    "EncodedEventRun",
    "EncodedEventRunSink",
    "EncodedEventSink",
    "EventInbox",
    "EventSink",
    "EventSinkDirectory",
    "InvocationCompleteEvent",
    "InvocationErrorEvent",
    "InvocationEventBase",
    "InvocationProgressEvent",
    "InvocationProgressSummaryEvent",
    "InvocationStartedEvent",
    "ProgressEventRunSink",
    "ProgressImage",
    "QueueClearedEvent",
    "QueueEventBase",
    "QueueItemEventBase",
    "QueueItemStatusChangedEvent",
    "QueueItemsCanceledEvent",
    "RelayEventSink",
    "SelectiveEventSink",
    "brief_message",
    "encode_message",
    "progress_summary_message",
]

CORE_EVENTS: tuple[type[BaseEvent], ...] = (
    *MODEL_INSTALL_EVENTS,
    *MODEL_LOAD_EVENTS,
    BatchEnqueuedEvent,
    InvocationCompleteEvent,
    InvocationErrorEvent,
    InvocationProgressEvent,
    InvocationStartedEvent,
    QueueClearedEvent,
    QueueItemStatusChangedEvent,
    QueueItemsCanceledEvent,
)
"""The events the host always knows; a plugin cannot register another class under these names."""
