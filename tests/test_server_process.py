"""The real thing: `invoke-host serve` in its own process, with pip-installed packs on its path."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_installed_pack_shows_up_in_the_running_server(packs_site: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(packs_site), "INVOKE_HOST_ROOT": str(tmp_path / "root")}
    cli = Path(sys.executable).parent / "invoke-host"
    process = subprocess.Popen(
        [str(cli), "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(f"{base}/api/v1/app/version")
                break
            except OSError:
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.2)
        nodes = {n["type"] for n in _get(f"{base}/api/v1/nodes")}  # type: ignore[attr-defined]
        assert {"good_greet", "good_shout"} <= nodes
        plugins = {p["name"]: p["status"] for p in _get(f"{base}/api/v1/plugins")}  # type: ignore[attr-defined]
        assert plugins["broken_import_pack"] == "failed"
        assert plugins["broken_hook_pack"] == "failed"
        schema = _get(f"{base}/schema/openapi.json")
        assert "good_greet" in schema["components"]["schemas"]["AnyInvocation"]["discriminator"]["mapping"]  # type: ignore[index]
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert "broken_import_pack" in output  # the log says which plugin was skipped and why
