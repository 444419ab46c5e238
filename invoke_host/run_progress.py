"""What ``invoke-host run`` shows on stderr while a graph runs: each node, its progress, the models it loads.

On a terminal, a node that reports a percentage (a denoise's steps) gets a bar redrawn in place, which its
"ran" line then replaces. Anywhere else (a log file, a pipe, a CI job) every line stays, so a bar is written as
a line each time it passes another tenth, and a message without a percentage once each time it changes.

Events come from the runner's thread and model loads from the loading thread, one at a time: the session runs
its nodes one after another, and a node loads its models while it runs.
"""

from __future__ import annotations

import time
from typing import TextIO

from invoke_host.engine import EngineEvent, NodeCompleted, NodeFailed, NodeProgress, NodeStarted
from invoke_host.model_cache import ModelLoadEvent

__all__ = ["RunProgress"]

_BAR_WIDTH = 24
_CLEAR_LINE = "\r\x1b[K"


class RunProgress:
    """Writes what a session does to ``out``; ``tty`` (default: whether ``out`` is a terminal) redraws bars."""

    def __init__(self, out: TextIO, *, tty: bool | None = None, prefix: str = "") -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.prefix = prefix
        """Put before each line (``[2/4] `` for the second session of a batch)."""
        self._started: dict[str, float] = {}
        self._loads: dict[tuple[str, str | None], float] = {}
        self._last_tenth: dict[str, int] = {}
        self._last_message: dict[str, str] = {}
        self._bar_shown = False

    def __call__(self, event: EngineEvent) -> None:
        if isinstance(event, NodeStarted):
            self._started[event.node_id] = time.monotonic()
        elif isinstance(event, NodeProgress):
            self._progress(event)
        elif isinstance(event, NodeCompleted):
            took = time.monotonic() - self._started.pop(event.node_id, time.monotonic())
            how = "[cached]" if event.cached else f"in {took:.2f} s"
            self._line(f"ran {event.source_node_id} ({event.invocation_type}) {how}")
            self._forget(event.node_id)
        elif isinstance(event, NodeFailed):
            self._line(f"FAILED {event.source_node_id} ({event.invocation_type}): {event.error_type}: "
                       f"{event.error_message}")
            self._forget(event.node_id)

    def model_load(self, event: ModelLoadEvent) -> None:
        """A model load of the session's nodes (the host's model-load listener)."""
        config = event.config
        what = f"{getattr(config, 'name', event.key)}{f' ({event.submodel})' if event.submodel else ''}"
        if event.kind == "started":
            self._loads[(event.key, event.submodel)] = time.monotonic()
            self._line(f"  loading model {what}")
            return
        took = time.monotonic() - self._loads.pop((event.key, event.submodel), time.monotonic())
        size = f", {event.size_bytes / 2**20:.1f} MiB" if event.size_bytes is not None else ""
        self._line(f"  loaded model {what} in {took:.2f} s{size}")

    def _progress(self, event: NodeProgress) -> None:
        label = f"  {event.source_node_id}"
        if event.percentage is None:
            if self._last_message.get(event.node_id) != event.message:
                self._last_message[event.node_id] = event.message
                self._line(f"{label}: {event.message}")
            return
        fraction = min(max(event.percentage, 0.0), 1.0)
        percent = round(fraction * 100)
        if self.tty:
            filled = round(fraction * _BAR_WIDTH)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            self.out.write(f"{_CLEAR_LINE}{self.prefix}{label} [{bar}] {percent:3d}%  {event.message}")
            self.out.flush()
            self._bar_shown = True
            return
        tenth = int(fraction * 10)
        if tenth > self._last_tenth.get(event.node_id, -1):
            self._last_tenth[event.node_id] = tenth
            self._line(f"{label}: {percent}% {event.message}")

    def _line(self, text: str) -> None:
        if self._bar_shown:
            self.out.write(_CLEAR_LINE)
            self._bar_shown = False
        self.out.write(f"{self.prefix}{text}\n")
        self.out.flush()

    def _forget(self, node_id: str) -> None:
        self._last_tenth.pop(node_id, None)
        self._last_message.pop(node_id, None)

    def close(self) -> None:
        """End a bar still drawn (a run that stopped mid-node), so what follows starts on a line of its own."""
        if self._bar_shown:
            self.out.write("\n")
            self.out.flush()
            self._bar_shown = False
