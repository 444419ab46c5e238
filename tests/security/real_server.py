"""A real ``invoke-host serve`` in its own process, for tests whose threat lives in HTTP itself.

Raw requests go through :func:`raw_request` (``http.client`` with the Host header we choose, which
no high-level client lets a test forge), so what reaches the server is exactly what a browser or an
attacker would send.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RealServer", "Reply", "free_port", "raw_request", "real_server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RealServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        """Everything the server wrote to stdout and stderr so far (its logs)."""
        return self.log_path.read_text(errors="replace")

    def request(self, method: str, path: str, *, host: str | None = None, headers: Mapping[str, str] | None = None,
                body: bytes | None = None) -> Reply:
        return raw_request(self.port, method, path, host=host or f"127.0.0.1:{self.port}", headers=headers, body=body)


def raw_request(port: int, method: str, path: str, *, host: str, headers: Mapping[str, str] | None = None,
                body: bytes | None = None) -> Reply:
    """One request with exactly this Host header; the reply read to its end."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


@contextmanager
def real_server(root: Path, *args: str, env: Mapping[str, str] | None = None) -> Iterator[RealServer]:
    """``invoke-host serve --port P *args`` with its data root at ``root``, answering when yielded.

    The environment has no ``INVOKE_HOST_*`` variable but those given, so the server runs on its
    defaults (the test suite's own settings for in-process apps do not leak into it).
    """
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_HOST_")}
    full_env = {**clean, "INVOKE_HOST_ROOT": str(root), "HF_HUB_OFFLINE": "1", **(env or {})}
    log_path = root.parent / f"server-{port}.log"
    cli = Path(sys.executable).parent / "invoke-host"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(cli), "serve", "--port", str(port), *args], env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    server = RealServer(process, port, log_path)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/api/v1/app/version", timeout=5):
                    break
            except OSError:
                assert process.poll() is None, f"the server exited:\n{server.log()}"
                assert time.monotonic() < deadline, f"the server did not answer within 90 s:\n{server.log()}"
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
