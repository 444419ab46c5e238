"""A real ``invoke-host serve`` process logs ours, Litestar's and uvicorn's records in one format, at --log-level.

Litestar and uvicorn each set up logging of their own by default (Litestar also reset the root logger to INFO),
which gave one server's log three formats. The server here answers a request (uvicorn's access log), fails in a
plugin route (Litestar's uncaught-exception record), refuses a few requests on purpose (no record) and starts up
(our registry's record, uvicorn's start lines).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

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
