"""A real ``invoke-host serve`` process logs ours, Litestar's and uvicorn's records in one format, at --log-level.

Litestar and uvicorn each set up logging of their own by default (Litestar also reset the root logger to INFO),
which gave one server's log three formats. The server here answers a request (uvicorn's access log), fails in a
plugin route (Litestar's uncaught-exception record), refuses a few requests on purpose (no record) and starts up
(our registry's record, uvicorn's start lines).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.waiting import wait_until

PLUGINS = "sqlite_storage,local_file_storage,core_events,core_nodes,wait_pack"
CLI = Path(sys.executable).parent / "invoke-host"
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ([\w.]+): (.*)$")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str | urllib.request.Request) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _serve_and_log(wait_pack_site: Path, root: Path, level: str) -> list[str]:
    """Start a server at ``level``, ask it for its version and the broken route, stop it; its output lines."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(wait_pack_site), "INVOKE_HOST_ROOT": str(root),
           "INVOKE_HOST_PLUGINS_ALLOW": PLUGINS}
    process = subprocess.Popen([str(CLI), "serve", "--port", str(port), "--log-level", level], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or _status(f"{base}/api/v1/app/version") == 200,
                   "the server to answer", timeout=60, interval=0.1)
        assert process.poll() is None, process.communicate()[0]
        assert _status(f"{base}/api/v1/wait-pack/broken") == 500
        # Deliberate refusals, raised as HTTPException with their own status: no record, no traceback (Litestar's
        # own check reads the class's status, 500, and logged each as an "Uncaught exception").
        assert _status(urllib.request.Request(f"{base}/api/v1/graphs/validate", data=b"[1]", method="POST",
                                              headers={"content-type": "application/json"})) == 422
        assert _status(f"{base}/api/v1/queue/default/list?cursor=1:2&offset=0") == 422
        assert _status(f"{base}/api/v1/images/i/nope") == 404
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    return output.splitlines()


def _records(lines: list[str]) -> list[tuple[str, str, str, list[str]]]:
    """(level, logger, message, continuation lines) of each record; fails on a line before the first record."""
    records: list[tuple[str, str, str, list[str]]] = []
    for line in lines:
        found = RECORD.match(line)
        if found:
            records.append((found[1], found[2], found[3], []))
        else:
            assert records, f"the log starts with a line in another format: {line!r}"
            records[-1][3].append(line)
    return records


def test_ours_litestars_and_uvicorns_records_share_one_format(wait_pack_site: Path, tmp_path: Path) -> None:
    records = _records(_serve_and_log(wait_pack_site, tmp_path / "root", "info"))
    loggers = {logger for _level, logger, _message, _more in records}
    assert {"invoke_host.registry", "litestar", "uvicorn.error", "uvicorn.access"} <= loggers, loggers
    # Only a traceback continues a record on further lines: Litestar's, for the route that failed.
    continued = [(logger, message, more) for _level, logger, message, more in records if more]
    assert len(continued) == 1, continued
    [(logger, message, more)] = continued
    assert logger == "litestar"
    assert message == "Uncaught exception (connection_type=http, path='/api/v1/wait-pack/broken'):"
    assert more[0] == "Traceback (most recent call last):" and more[-1] == "RuntimeError: a bug in a plugin route"
    access = [message for _level, logger, message, _more in records if logger == "uvicorn.access"]
    assert any('"GET /api/v1/app/version HTTP/1.1" 200' in message for message in access), access
    assert any(message.startswith("Started server process") for _l, logger, message, _m in records
               if logger == "uvicorn.error")


def test_the_log_level_holds_for_every_logger(wait_pack_site: Path, tmp_path: Path) -> None:
    records = _records(_serve_and_log(wait_pack_site, tmp_path / "root", "warning"))
    assert [(level, logger) for level, logger, _message, _more in records] == [("ERROR", "litestar")]


def _json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_a_debug_level_run_of_a_large_iterate_keeps_its_lease_and_logs_what_ran_per_item(tmp_path: Path) -> None:
    """At DEBUG a 10,000-item iterate logged two lines a node from the loop: the loop was held for seconds and, with
    a 3 s lease, the item lost its lease and was claimed again (docs/benchmarks.md). Now it runs once, and the log
    says per item what ran."""
    port = _free_port()
    env = {**os.environ, "INVOKE_HOST_ROOT": str(tmp_path / "root"), "INVOKE_HOST_LEASE_SECONDS": "3",
           "INVOKE_HOST_PLUGINS_ALLOW": "sqlite_storage,local_file_storage,core_events,core_nodes"}
    process = subprocess.Popen([str(CLI), "serve", "--port", str(port), "--log-level", "debug"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/api/v1"
    size = 10_000
    graph = {"nodes": {"r": {"type": "range_of_size", "start": 0, "size": size, "step": 1}, "it": {"type": "iterate"},
                       "add": {"type": "add", "b": 1}, "col": {"type": "collect"}},
             "edges": [{"source": {"node_id": a, "field": fa}, "destination": {"node_id": b, "field": fb}}
                       for a, fa, b, fb in [("r", "collection", "it", "collection"), ("it", "item", "add", "a"),
                                            ("add", "value", "col", "item")]]}
    try:
        wait_until(lambda: process.poll() is not None or _status(f"{base}/app/version") == 200,
                   "the server to answer", timeout=60, interval=0.1)
        assert process.poll() is None, process.communicate()[0]
        enqueued = _json(f"{base}/queue/q/enqueue_batch", {"batch": {"graph": graph}})
        [item_id] = enqueued["item_ids"]
        wait_until(lambda: _json(f"{base}/queue/q/i/{item_id}")["status"] in ("completed", "failed", "canceled"),
                   "the item to finish", timeout=120, interval=0.1)
        item = _json(f"{base}/queue/q/i/{item_id}")
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert (item["status"], item["attempts"]) == ("completed", 1), output[-2000:]
    records = _records(output.splitlines())
    assert not [r for r in records if r[0] in ("WARNING", "ERROR")], [r for r in records if r[0] != "DEBUG"]
    # No line per node: the item's lines say what ran, in a few lines.
    item_lines = [message for _level, logger, message, _more in records
                  if logger.startswith("invoke_host") and str(item_id) in message]
    assert f"Queue item {item_id} ran, by node type: add {size}, iterate {size}, collect 1, range_of_size 1" in (
        item_lines)
    assert not [m for _l, _logger, m, _more in records if m.startswith("Event invocation_")]
    assert len(records) < 200, len(records)
