"""Validated graphs handed from enqueue to the processor of the same host, so a claimed item is not rebuilt.

At enqueue a batch's graph is validated, which builds every node object; the processor needs those same objects.
Without this hand-over it decodes the stored session again and validates every node a second time
(:func:`~invoke_host.graph.load_validated_graph`). Entries are keyed by session id and taken (removed) at claim;
an item claimed by another process, or after a restart, or pushed out by the bound, is simply loaded from storage.
The batch's workflow text is held beside the graph: with both, a claim never decodes the stored session.

The bound counts graph nodes, each graph once however many sessions share it, plus one per held session, so
enqueues that nothing here claims cannot make the host hold more than about ``max_nodes`` of them; the oldest
go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import NamedTuple

from invoke_host.graph import GraphBase

__all__ = ["HeldGraphs", "HeldSession"]


class HeldSession(NamedTuple):
    """What a claim of a held session needs from its stored session: the validated graph and the workflow."""

    graph: GraphBase
    workflow: str | None
    """The session's ``workflow`` (JSON text), as stored in it; None when the batch had none."""


class HeldGraphs:
    """Session id -> its validated graph, holding at most ``max_nodes`` nodes of distinct graphs plus sessions
    (0: none).

    Safe from any thread (enqueue prepares large batches in a worker thread).
    """

    def __init__(self, max_nodes: int) -> None:
        self.max_nodes = max_nodes
        self._by_session: OrderedDict[str, HeldSession] = OrderedDict()
        self._users: dict[int, int] = {}
        """id(graph) -> how many held sessions share it: its nodes count once."""
        self._nodes = 0
        self._lock = threading.Lock()

    @property
    def cost(self) -> int:
        """What is held now, in the bound's terms: the nodes of the held graphs (each once) plus the sessions."""
        return self._nodes + len(self._by_session)

    def __len__(self) -> int:
        return len(self._by_session)

    def hold(self, graph: GraphBase, session_ids: Iterable[str], workflow: str | None = None) -> None:
        """Hold ``graph`` (and the sessions' ``workflow`` text) for these sessions; pushes out the oldest entries
        past the bound. A graph larger than the bound on its own is not held."""
        size = len(graph.nodes)
        if size + 1 > self.max_nodes:
            return
        held = HeldSession(graph, workflow)
        with self._lock:
            for session_id in session_ids:
                if session_id in self._by_session:
                    continue
                users = self._users.get(id(graph), 0)
                if users == 0:
                    self._nodes += size
                self._users[id(graph)] = users + 1
                self._by_session[session_id] = held
            while self._nodes + len(self._by_session) > self.max_nodes:
                self._drop(next(iter(self._by_session)))

    def take(self, session_id: str) -> HeldSession | None:
        """The graph and workflow held for the session, removed; None if none is held."""
        with self._lock:
            return self._drop(session_id)

    def _drop(self, session_id: str) -> HeldSession | None:
        held = self._by_session.pop(session_id, None)
        if held is None:
            return None
        graph = held.graph
        users = self._users[id(graph)] - 1
        if users:
            self._users[id(graph)] = users
        else:
            del self._users[id(graph)]
            self._nodes -= len(graph.nodes)
        return held
