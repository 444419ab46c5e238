"""One backend object started, stopped and started again (what a host restarting its services does)."""

from __future__ import annotations

from tests.storage.conftest import make_batch
from tests.storage_backends import BackendMaker


async def test_start_stop_start_serves_reads_on_fresh_connections(backend_maker: BackendMaker) -> None:
    backend = backend_maker.new(**({"readers": 2} if backend_maker.kind == "sqlite" else {"max_connections": 2}))
    await backend.start()
    record, items = make_batch(n=2)
    await backend.session_queue.enqueue(record, items, prepend=False)
    await backend.stop()
    await backend.start()
    try:
        # More reads than readers: each one must get an open connection, never one closed by stop().
        for _ in range(5):
            counts = await backend.session_queue.counts("default")
            assert counts.pending == 2
    finally:
        await backend.stop()
