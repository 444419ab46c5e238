"""The cyclic collector during start-up (invoke_host/start_gc.py): paused while the plugins' classes are made and
checked, back on after; `invoke-host serve` leaves what start-up made out of later collections."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import invoke_core_nodes.plugin
import pytest
from invoke_sdk import hookimpl

from invoke_host.config import HostConfig
from invoke_host.host import build_host
from invoke_host.start_gc import collections_paused


def test_a_pause_turns_the_collector_back_on_after_the_block_even_when_it_raises() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collections_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_nested_pause_keeps_the_collector_off_until_the_outer_one_ends() -> None:
    with collections_paused():
        with collections_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_pause_leaves_the_collector_off_when_it_was_off() -> None:
    gc.disable()
    try:
        with collections_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


class _Recorder:
    """A plugin whose hook makes garbage cycles enough for several collections, and counts those that come."""

    def __init__(self) -> None:
        self.enabled_while_registering: bool | None = None
        self.collections_while_registering = 0

    def counted(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.collections_while_registering += 1

    @hookimpl
    def register_invocations(self, register: Any) -> None:
        self.enabled_while_registering = gc.isenabled()
        gc.callbacks.append(self.counted)
        try:
            for _ in range(gc.get_threshold()[0] * 3):
                cycle: list[Any] = []
                cycle.append(cycle)
        finally:
            gc.callbacks.remove(self.counted)


def test_building_the_host_runs_no_collection_while_plugins_register_and_turns_the_collector_back_on(
    tmp_path: Path,
) -> None:
    recorder = _Recorder()
    host = build_host(HostConfig(root=tmp_path), [invoke_core_nodes.plugin, recorder], entry_points=False)
    assert recorder.enabled_while_registering is False
    assert recorder.collections_while_registering == 0
    assert gc.isenabled()
    assert "add" in host.registry.invocations
    # The cycles made above are collected by the first collection after the pause. A library call freezes nothing.
    assert gc.get_freeze_count() == 0


SERVE = """
import gc, json, os, sys

import invoke_host.serving
from invoke_host.heap_freeze import freeze_startup_objects


def serve_app(app, config):
    seen = {"frozen": gc.get_freeze_count(), "enabled": gc.isenabled()}
    freeze_startup_objects()  # what the real serve_app does first on its loop
    seen["enabled_after_freeze"] = gc.isenabled()
    print(json.dumps(seen))
    return True


invoke_host.serving.serve_app = serve_app
sys.argv = [os.path.join(os.path.dirname(sys.executable), "invoke-host"), *sys.argv[1:]]
from invoke_host.cli import main
main()
"""


def test_serve_stays_paused_until_the_start_up_freeze_and_serves_with_the_collector_on(tmp_path: Path) -> None:
    # PYTHONMALLOC set: the process is not started again (invoke_host.memory), so the script's patch stays.
    # (The freeze of what start-up made happens inside serve_app: tests/test_heap_freeze.py.) Still paused when
    # serve_app is entered: a collection before the freeze walked every start-up object (60-90 ms, h-start5).
    env = {**os.environ, "PYTHONMALLOC": "pymalloc"}
    out = subprocess.run(
        [sys.executable, "-c", SERVE, "serve", "--root", str(tmp_path / "root"), "--port", "0"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["enabled"] is False
    assert seen["frozen"] == 0  # nothing frozen before serve_app
    assert seen["enabled_after_freeze"] is True
