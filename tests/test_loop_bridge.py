"""The one bridge node threads use to call into the host's event loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from invoke_host.loop_bridge import EventLoopThreadError, LoopBridge, LoopNotRunningError


async def _double(value: int) -> int:
    await asyncio.sleep(0)
    return value * 2


async def _fail() -> None:
    raise KeyError("no such model")


async def test_a_started_bridge_runs_calls_from_a_thread_on_its_loop() -> None:
    bridge = LoopBridge()
    await bridge.start()
    loop_thread = threading.get_ident()

    async def where() -> int:
        return threading.get_ident()

    assert await asyncio.to_thread(bridge.call, _double(21), what="a test") == 42
    assert await asyncio.to_thread(bridge.call, where(), what="a test") == loop_thread
    with pytest.raises(KeyError, match="no such model"):
        await asyncio.to_thread(bridge.call, _fail(), what="a test")


async def test_a_call_on_the_loop_thread_is_refused_instead_of_hanging() -> None:
    bridge = LoopBridge()
    await bridge.start()
    coro = _double(1)
    with pytest.raises(EventLoopThreadError, match=r"context\.images was called on the host's event loop thread"):
        bridge.call(coro, what="context.images")
    assert coro.cr_frame is None  # closed, never left pending


async def test_before_start_and_after_stop_a_call_says_to_start_the_host() -> None:
    bridge = LoopBridge()
    with pytest.raises(LoopNotRunningError, match=r"a model lookup needs the host's services.*await host.start\(\)"):
        await asyncio.to_thread(bridge.call, _double(1), what="a model lookup")
    await bridge.start()
    assert bridge.loop is asyncio.get_running_loop()
    await bridge.stop()
    assert bridge.loop is None
    with pytest.raises(LoopNotRunningError):
        await asyncio.to_thread(bridge.call, _double(1), what="a model lookup")
