"""The in-process event bus: every emitted event goes to every sink, in order, on the event loop.

Nothing is stored: an event reaches the sinks that exist when it is emitted. An emitter whose events cost
something to build asks :meth:`EventBus.wants` first, and builds nothing when no sink would use it. A sink that raises
is logged and the others still get the event; the emitter never sees the failure.

Events emitted from other threads (node code) are queued and handed to the loop in bursts: one
``call_soon_threadsafe`` (one wake-up of the loop) for the first event after a quiet spell; while events keep
coming, the loop looks again every :data:`FOLLOW_UP` seconds by its own timer and the node's thread wakes nothing.
Waking the loop once per burst still cost more than building the events: with a subscriber, a 10,000-item graph's
thread and the loop handed the interpreter lock back and forth about 9,000 times (a self-pipe write each, a third
of the node thread's time in a profile of ``bench/event_cpu.py``). Order is kept: an event emitted on the loop first
delivers the queued ones.

An emitter that writes its own wire message hands the bus an :class:`~invoke_sdk.events.EncodedEvent`
(:meth:`EventBus.emit_encoded`): sinks that take encoded events get it as it is, the others its typed model
(built once, when the first of them needs it), and a selective sink that does not want it gets nothing, so a
graph's per-node events cost the websocket sink's clients the encoding alone. :meth:`EventBus.wants_typed` tells the
emitter whether a sink will need the model, so that it builds it on its own thread, off the loop;
:meth:`EventBus.wanted` answers both questions in one pass over the sinks (an emitter of thousands of events asks once
per event). The encoded events that reach the loop in one burst go to a sink with ``deliver_encoded_batch``
(:class:`~invoke_sdk.events.EncodedEventBatchSink`) in one call: with 20 websocket clients watching a 10,000-node
graph, the per-event work on the loop was most of what the clients cost the server.

A queue item's node starts and completions come as runs (:mod:`invoke_host.events.runs`): its node thread adds each
message to the run it has open, the bus queues the run once and seals it on the loop into one
:class:`~invoke_sdk.encoded_run.EncodedEventRun`, which a sink with ``deliver_encoded_run``
(:class:`~invoke_sdk.events.EncodedEventRunSink`) takes whole; the others get its events one by one. Any other event
emitted through the bus closes the open runs first (:attr:`EventBus.epoch`), so order is kept.

Node events have a brief form too (:mod:`invoke_sdk.brief_message`), for consumers that asked for it (a websocket
client's ``"node_events": "brief"``): :meth:`EventBus.wanted_forms` tells the emitter which forms some sink wants, and
a run of brief messages goes only to the sinks that take them (:class:`~invoke_sdk.events.BriefEventRunSink`). And a
progress form (:mod:`invoke_sdk.progress_summary`): :meth:`EventBus.wants_progress` tells the publisher to count an
item's nodes into windows (:mod:`invoke_host.events.progress`), whose one-summary runs go only to the sinks that take
them (:class:`~invoke_sdk.events.ProgressEventRunSink`).

An event that came from another node (``emit(event, remote=True)``, called by a relay sink through its
:class:`~invoke_sdk.events.EventInbox`) goes to every sink except the relays, so it is never sent out again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence

from invoke_sdk.events import (
    BaseEvent,
    BriefEventRunSink,
    EncodedEvent,
    EncodedEventBatchSink,
    EncodedEventRun,
    EncodedEventRunSink,
    EncodedEventSink,
    EventSink,
    ProgressEventRunSink,
    RelayEventSink,
    SelectiveEventSink,
)

from invoke_host.events.progress import ProgressWindow
from invoke_host.events.runs import PendingRun

__all__ = ["FOLLOW_UP", "WANTED", "WANTED_TYPED", "EventBus"]

logger = logging.getLogger("invoke_host.events")

WANTED = 1
""":meth:`EventBus.wanted`: a sink wants the event, and the encoded event will do for every sink that does."""
WANTED_TYPED = 2
""":meth:`EventBus.wanted`: a sink that needs the typed model wants the event (build it, off the loop)."""

FOLLOW_UP = 0.005
"""Seconds between two looks at the events queued from other threads while they keep coming (the most an event
waits beyond its burst's first); a look that finds none ends the stream, and the next event wakes the loop again."""

_Route = tuple[EventSink, Callable[[Sequence[EncodedEvent]], None] | None, Callable[[EncodedEvent], None] | None,
               Callable[[str], bool] | None, Callable[[EncodedEventRun], None] | None]
"""How a started sink takes encoded events: (sink, its deliver_encoded_batch, its deliver_encoded, its wants, its
deliver_encoded_run)."""


class _Remote:
    """A queued event that came from another node (an event from this node is queued as it is, without a wrapper:
    one object less per node event for the garbage collector to walk while it waits for the loop)."""

    __slots__ = ("event",)

    def __init__(self, event: BaseEvent) -> None:
        self.event = event


_Queued = BaseEvent | EncodedEvent | _Remote | PendingRun | ProgressWindow


class EventBus:
    """A Host service: starts the sinks, delivers events to them, stops them."""

    def __init__(self, sinks: Sequence[EventSink] = ()) -> None:
        self.sinks: list[EventSink] = list(sinks)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._started: list[EventSink] = []
        self._local: list[EventSink] = []
        """The started sinks that are not relays: what an event from another node goes to."""
        # Appended to by emitting threads, taken from on the loop; no lock: a deque's append and popleft are atomic,
        # and _flush re-reads the queue after lowering the flag, so no event is left waiting (see there).
        self._pending: deque[_Queued] = deque()
        self._flush_scheduled = False
        # Read from worker threads by wants(): replaced whole (a tuple), never changed in place.
        self._asked_remote: tuple[Callable[[str], bool], ...] | None = ()
        self._encoded_routes: list[_Route] = []
        # Read from worker threads by wanted(): each started sink's wants (None: it takes everything) and whether it
        # needs typed events; replaced whole, never changed in place.
        self._kinds: tuple[tuple[Callable[[str], bool] | None, bool], ...] = ()
        # The same for wanted_forms(): each started sink's (wants, typed, wants_full, wants_brief); the last two None
        # for a sink without brief forms.
        self._forms: tuple[tuple[Callable[[str], bool] | None, bool, Callable[[str], bool] | None,
                                 Callable[[str], bool] | None], ...] = ()
        self._brief_routes: list[tuple[EventSink, Callable[[EncodedEventRun], None]]] = []
        self._progress_routes: list[tuple[EventSink, Callable[[EncodedEventRun], None]]] = []
        # Read from worker threads by wants_progress(): replaced whole, never changed in place.
        self._progress_asks: tuple[Callable[[str], bool], ...] = ()
        self.epoch = 0
        """Changed by every event emitted other than through a run: a :class:`~invoke_host.events.runs.RunWriter`
        opens a new run when it differs from its open run's, so that nothing emitted later joins an earlier run."""

    def sink(self, name: str) -> EventSink | None:
        """The sink of that name, if any."""
        return next((s for s in self.sinks if s.name == name), None)

    async def start(self) -> None:
        self._flush_scheduled = False  # a follow-up of an earlier loop never runs
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        for sink in self.sinks:
            try:
                await sink.start()
            except Exception:
                logger.exception("Event sink %r failed to start; it will get no events", sink.name)
                continue
            self._started.append(sink)
        self._local = [s for s in self._started if not isinstance(s, RelayEventSink)]
        self._asked_remote = self._selectors(self._local)
        self._encoded_routes = [
            (s, s.deliver_encoded_batch if isinstance(s, EncodedEventBatchSink) else None,
             s.deliver_encoded if isinstance(s, EncodedEventSink) else None,
             s.wants if isinstance(s, SelectiveEventSink) else None,
             s.deliver_encoded_run if isinstance(s, EncodedEventRunSink) else None)
            for s in self._started
        ]
        self._kinds = tuple((s.wants if isinstance(s, SelectiveEventSink) else None,
                             not isinstance(s, EncodedEventSink)) for s in self._started)
        self._forms = tuple(
            (wants, typed, s.wants_full, s.wants_brief) if isinstance(s, BriefEventRunSink)
            else (wants, typed, None, None)
            for s, (wants, typed) in zip(self._started, self._kinds, strict=True))
        self._brief_routes = [(s, s.deliver_brief_run) for s in self._started if isinstance(s, BriefEventRunSink)]
        progress = [s for s in self._started if isinstance(s, ProgressEventRunSink)]
        self._progress_routes = [(s, s.deliver_progress_run) for s in progress]
        self._progress_asks = tuple(s.wants_progress for s in progress)

    @staticmethod
    def _selectors(sinks: Sequence[EventSink]) -> tuple[Callable[[str], bool], ...] | None:
        """The sinks' ``wants``; None when one of them wants everything (it has no ``wants``)."""
        selectors = []
        for sink in sinks:
            if not isinstance(sink, SelectiveEventSink):
                return None
            selectors.append(sink.wants)
        return tuple(selectors)

    def wants(self, event_name: str, *, remote: bool = False) -> bool:
        """Whether a started sink would use an event of this name now: if not, the emitter need not build it.

        Safe from any thread. True when any sink has no ``wants`` (it takes everything), or when asking a sink
        fails (the failure is logged); False before the bus starts and after it stops. ``remote``: whether a sink
        other than the relays would (for an event from another node).
        """
        if self._loop is None:
            return False
        if remote:
            return self._ask(self._asked_remote, event_name)
        return self.wanted(event_name) != 0

    def wants_typed(self, event_name: str) -> bool:
        """Whether a started sink that cannot take an encoded event would use one of this name now: then the
        emitter of an :class:`~invoke_sdk.events.EncodedEvent` should build its typed model itself. Any thread."""
        return self.wanted(event_name) == WANTED_TYPED

    def wanted(self, event_name: str) -> int:
        """:meth:`wants` and :meth:`wants_typed` in one pass over the sinks, for an emitter of encoded events: 0 when
        no sink would use the event, :data:`WANTED_TYPED` when a sink that needs the typed model would, else
        :data:`WANTED`. Safe from any thread; a sink that fails to answer gets the event (the failure is logged)."""
        if self._loop is None:
            return 0
        answer = 0
        for wants, typed in self._kinds:
            if wants is not None:
                try:
                    if not wants(event_name):
                        continue
                except Exception:
                    logger.exception("An event sink failed to say whether it wants %r; it gets it", event_name)
            if typed:
                return WANTED_TYPED
            answer = WANTED
        return answer

    def wanted_forms(self, event_name: str) -> tuple[int, bool]:
        """Which forms of an event of this name some sink would use now: ``(full, brief)``, ``full`` as
        :meth:`wanted` answers it (0, :data:`WANTED` or :data:`WANTED_TYPED`) but for a sink with brief forms only when
        it wants the full message, ``brief`` whether such a sink wants the brief form (:mod:`invoke_sdk.brief_message`).
        Safe from any thread; a sink that fails to answer gets the full event (the failure is logged)."""
        if self._loop is None:
            return 0, False
        full = 0
        brief = False
        for wants, typed, wants_full, wants_brief in self._forms:
            try:
                if wants_brief is not None and wants_full is not None:
                    brief = brief or wants_brief(event_name)
                    if not wants_full(event_name):
                        continue
                elif wants is not None and not wants(event_name):
                    continue
            except Exception:
                logger.exception("An event sink failed to say whether it wants %r; it gets it", event_name)
            full = WANTED_TYPED if typed else max(full, WANTED)
        return full, brief

    def wants_progress(self, event_name: str) -> bool:
        """Whether some sink wants per-item summaries in place of events of this name now
        (:mod:`invoke_sdk.progress_summary`): then the publisher counts them. Safe from any thread; a sink that fails
        to answer gets none (the failure is logged), since summaries are not the form anyone gets by default."""
        if self._loop is None:
            return False
        for wants in self._progress_asks:
            try:
                if wants(event_name):
                    return True
            except Exception:
                logger.exception("An event sink failed to say whether it wants summaries of %r", event_name)
        return False

    @staticmethod
    def _ask(asked: tuple[Callable[[str], bool], ...] | None, event_name: str) -> bool:
        if asked is None:
            return True
        for wants in asked:
            try:
                if wants(event_name):
                    return True
            except Exception:
                logger.exception("An event sink failed to say whether it wants %r; it gets it", event_name)
                return True
        return False

    async def stop(self) -> None:
        self._asked_remote = ()
        self._local = []
        self._encoded_routes = []
        self._kinds = ()
        self._forms = ()
        self._brief_routes = []
        self._progress_routes = []
        self._progress_asks = ()
        started, self._started = self._started, []
        for sink in reversed(started):
            try:
                await sink.stop()
            except Exception:
                logger.exception("Event sink %r failed to stop", sink.name)
        self._loop = None

    def emit(self, event: BaseEvent, *, remote: bool = False) -> None:
        """Deliver ``event`` to every sink. Safe from any thread (node code runs in worker threads).

        ``remote``: the event came from another node; it goes to every sink but the relays.
        """
        self._enqueue(event, remote)

    def emit_encoded(self, event: EncodedEvent) -> None:
        """Deliver an event written as its wire message: sinks that take encoded events get it as it is, every
        other sink that wants it (or cannot say) its typed model. Safe from any thread."""
        self._enqueue(event, False)

    def emit_run(self, run: PendingRun | ProgressWindow) -> bool:
        """Queue a run its writer has just opened (:class:`~invoke_host.events.runs.RunWriter`); it is sealed on the
        loop, with whatever the writer added to it meanwhile. False when nobody is listening (the bus is stopped)."""
        loop = self._loop
        if loop is None:
            return False
        if threading.get_ident() == self._loop_thread:
            if self._pending:
                self._deliver(self._take())
            self._dispatch_sealed(run.seal(), run.form)
            return True
        self._queue(loop, run)
        return True

    def _enqueue(self, event: BaseEvent | EncodedEvent, remote: bool) -> None:
        loop = self._loop
        if loop is None:
            return  # not started (a CLI command, or shut down): nobody is listening
        self.epoch += 1  # before it is queued: a run the emitting thread opens next comes after it
        if threading.get_ident() == self._loop_thread:
            if self._pending:
                self._deliver(self._take())
            self._dispatch(event, remote)
            return
        self._queue(loop, _Remote(event) if remote and isinstance(event, BaseEvent) else event)

    def _queue(self, loop: asyncio.AbstractEventLoop, item: _Queued) -> None:
        self._pending.append(item)
        if self._flush_scheduled:
            return  # the loop was woken, or looks again soon: it takes this one too
        self._flush_scheduled = True  # two threads may both get here: one wake-up too many, nothing lost
        try:
            loop.call_soon_threadsafe(self._flush)
        except RuntimeError:
            pass  # the loop closed under us: nobody is listening any more

    def _take(self) -> list[_Queued]:
        # popleft, not clear(): an event appended meanwhile stays for the next look.
        popleft = self._pending.popleft
        return [popleft() for _ in range(len(self._pending))]

    def _flush(self) -> None:
        """On the loop: deliver what was queued; while events keep coming, look again after :data:`FOLLOW_UP`."""
        if not self._pending:
            self._flush_scheduled = False  # the stream ended: the next event wakes the loop
            if not self._pending:
                return
            # One came in between: its emitter may have seen the flag still up and woken nothing; this look takes it.
            self._flush_scheduled = True
        self._deliver(self._take())
        loop = self._loop
        if loop is not None:
            loop.call_later(FOLLOW_UP, self._flush)
        else:
            self._flush_scheduled = False  # stopped: nobody is listening

    def _deliver(self, events: list[_Queued]) -> None:
        run: list[EncodedEvent] = []
        for event in events:
            if isinstance(event, EncodedEvent):
                run.append(event)
                continue
            if run:
                self._dispatch_run(run)
                run = []
            if isinstance(event, PendingRun | ProgressWindow):
                self._dispatch_sealed(event.seal(), event.form)
            elif isinstance(event, _Remote):
                self._dispatch(event.event, True)
            else:
                self._dispatch(event)
        if run:
            self._dispatch_run(run)

    def _dispatch(self, event: BaseEvent | EncodedEvent, remote: bool = False) -> None:
        if isinstance(event, EncodedEvent):
            self._dispatch_encoded(event)
            return
        for sink in self._local if remote else self._started:
            try:
                sink.deliver(event)
            except Exception:
                logger.exception("Event sink %r failed on event %r; the other sinks still got it", sink.name,
                                 event.event_name)

    def _dispatch_sealed(self, sealed: EncodedEventRun, form: str = "full") -> None:
        """A sealed run: whole to the sinks that take runs, its events one by one (made once) to the others; a run of
        brief forms or of progress summaries only to the sinks that take those."""
        if form != "full":
            for sink, deliver_brief in self._brief_routes if form == "brief" else self._progress_routes:
                try:
                    deliver_brief(sealed)
                except Exception:
                    logger.exception("Event sink %r failed on a %s run of %d events; the other sinks still got them",
                                     sink.name, form, sealed.count)
            return
        others: list[_Route] = []
        names: frozenset[str] | None = None
        for route in self._encoded_routes:
            deliver_run = route[4]
            if deliver_run is None:
                _, deliver_batch, deliver_encoded, wants, _ = route
                if deliver_batch is None and deliver_encoded is None and wants is not None:
                    # A sink that wants none of the run's names (the log above DEBUG, the output cache) costs the run
                    # a question per name, and no event is made one by one for it.
                    names = sealed.event_names if names is None else names
                    if not any(self._ask((wants,), name) for name in names):
                        continue
                others.append(route)
                continue
            try:
                deliver_run(sealed)
            except Exception:
                logger.exception("Event sink %r failed on a run of %d events; the other sinks still got them",
                                 route[0].name, sealed.count)
        if others:
            self._dispatch_run(sealed.events(), others)

    def _dispatch_run(self, run: list[EncodedEvent], routes: Sequence[_Route] | None = None) -> None:
        """Encoded events that arrived together, in order: one call per sink that takes them in batches."""
        if routes is None:
            if len(run) == 1:
                self._dispatch_encoded(run[0])
                return
            routes = self._encoded_routes
        names: set[str] | None = None
        for sink, deliver_batch, deliver_encoded, wants, _ in routes:
            if deliver_batch is not None:
                try:
                    deliver_batch(run)
                except Exception:
                    logger.exception("Event sink %r failed on %d events from %r on; the other sinks still got them",
                                     sink.name, len(run), run[0].event_name)
                continue
            wanted: set[str] | None = None  # None: every event of the run
            if deliver_encoded is None and wants is not None:
                # Asked once per name for the run (nothing else runs on the loop until it is delivered); a sink that
                # wants none of them (the log above DEBUG, the output cache) costs the run one question per name.
                if names is None:
                    names = {event.event_name for event in run}
                wanted = {name for name in names if self._ask((wants,), name)}
                if not wanted:
                    continue
            for event in run:
                try:
                    if deliver_encoded is not None:
                        deliver_encoded(event)
                    elif wanted is None or event.event_name in wanted:
                        sink.deliver(event.typed())
                except Exception:
                    logger.exception("Event sink %r failed on event %r; the other sinks still got it", sink.name,
                                     event.event_name)

    def _dispatch_encoded(self, event: EncodedEvent) -> None:
        for sink, _, deliver_encoded, wants, _ in self._encoded_routes:
            try:
                if deliver_encoded is not None:
                    deliver_encoded(event)
                elif wants is None or self._ask((wants,), event.event_name):
                    sink.deliver(event.typed())
            except Exception:
                logger.exception("Event sink %r failed on event %r; the other sinks still got it", sink.name,
                                 event.event_name)
