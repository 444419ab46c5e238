"""A warm pytest launcher for mutation runs.

On these machines a focused test run spends most of its time starting: Python, pytest and the third-party
packages (litestar, pydantic, Pillow ...). The server imports those once, then forks one child per test
run; the child imports our own modules (the mutated one included) from source and runs pytest. Nothing of
ours is imported before the fork, so every child sees the file as it is on disk at that moment.

    forkserver.py serve SOCKET              # run.py starts it in the scratch copy, with its environment
    forkserver.py run SOCKET TIMEOUT -- ARGS  # cosmic-ray's test command: exits 0 if the tests passed
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import sys
import time

# Third-party only: importing any of our packages here would freeze the unmutated code into every child.
PRELOAD = [
    "pytest", "_pytest.python", "_pytest.fixtures", "_pytest.assertion.rewrite", "pytest_asyncio", "pytest_timeout",
    "anyio", "anyio.pytest_plugin", "asyncio", "sqlite3", "aiosqlite", "pydantic", "msgspec",
    "pluggy", "importlib_metadata", "litestar", "litestar.testing", "httpx", "click", "PIL.Image",
    "PIL.PngImagePlugin", "PIL.WebPImagePlugin", "blake3", "imohash",
]


def serve(path: str) -> None:
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    import pytest

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    print(f"forkserver ready on {path}", flush=True)
    while True:
        conn, _ = server.accept()
        with conn:
            request = json.loads(conn.makefile().readline())
            pid = os.fork()
            if pid == 0:
                server.close()
                conn.close()
                os.setsid()
                out = os.open(request.get("log") or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(out, 1)
                os.dup2(out, 2)
                code = 1
                try:
                    code = int(pytest.main(request["args"]))
                finally:
                    os._exit(code)
            conn.sendall(f"{_wait(pid, float(request['timeout']))}\n".encode())


def _wait(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -int(signal.SIGKILL)
        time.sleep(0.005)


def run(path: str, timeout: float, args: list[str], log: str | None = None) -> int:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    with client:
        client.sendall((json.dumps({"args": args, "timeout": timeout, "log": log}) + "\n").encode())
        code = int(client.makefile().readline())
    return 0 if code == 0 else 1


def main() -> int:
    command, path = sys.argv[1], sys.argv[2]
    if command == "serve":
        serve(path)
        return 0
    if command == "run":
        separator = sys.argv.index("--")
        return run(path, float(sys.argv[3]), sys.argv[separator + 1:])
    raise SystemExit(f"unknown command {command!r}: serve or run")


if __name__ == "__main__":
    sys.exit(main())
