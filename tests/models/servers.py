"""A real HTTP server on 127.0.0.1 for URL installs and for huggingface_hub (HF_ENDPOINT)."""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

__all__ = ["ModelServer"]

COMMIT = "a" * 40


class ModelServer:
    """Serves ``files`` (name -> bytes) at ``/files/<name>``; ``/ranged/<name>`` supports Range and breaks the
    first transfer off half way; ``/html``, ``/missing``, ``/truncated/<name>``, ``/redirect/<name>``; and a tiny
    hub: ``/api/models/<repo>`` and ``/<repo>/resolve/<rev>/<path>`` from ``repos`` (repo -> {path: bytes}).

    For limits and credentials: ``/goto?to=<url>`` redirects anywhere, ``/loop`` to itself;
    ``/private/<name>`` needs ``Authorization: Bearer <token>``; ``/trickle/<name>`` sends one byte per
    ``trickle_interval`` s; ``/stall/<name>`` (and ``/ranged-stall/<name>``, once, then it serves ranges)
    sends a few bytes and then nothing until the server stops; ``/declared/<size>`` declares ``size``
    bytes and sends 16; ``/endless/<size>`` sends ``size`` bytes with no Content-Length;
    ``/badrange/<name>`` answers a resume from the wrong offset. ``/always-breaks/<name>`` breaks off every
    answer after ``piece`` bytes; after a first answer that breaks off, ``/ignores-range/<name>`` answers
    a resume with the whole file, ``/pieces/<name>`` with at most ``piece`` bytes (with Accept-Ranges only
    while ``piece_accept_ranges``), ``/norange/<name>`` with no Content-Range. ``/silent`` never answers,
    ``/empty`` is empty, ``/xhtml`` is an XHTML page. ``range_total`` replaces the full size a
    206 answer gives. Hub files listed in ``slow`` trickle too, and ``listed_sizes`` (path -> size)
    overrides the sizes the hub lists. ``/held/<name>`` sends 16 bytes, then the rest once ``release`` is set.
    ``seen`` records (path, headers) of every request. With ``tls``
    (a server-side SSL context) it serves https."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.files: dict[str, bytes] = {}
        self.repos: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.token = "secret-model-token"
        self.trickle_interval = 0.02
        self.slow: set[str] = set()
        self.listed_sizes: dict[str, int] = {}
        self.range_total: str | None = None
        self.piece = 1000
        self.piece_accept_ranges = True
        self.stopping = threading.Event()
        self.release = threading.Event()
        self._broken_once: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(
                self,
                code: int,
                body: bytes,
                headers: dict[str, str] | None = None,
                head: bool = False,
                length: int | None = None,
            ) -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def do_HEAD(self) -> None:
                self._route(head=True)

            def do_GET(self) -> None:
                self._route(head=False)

            def _trickle(self, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for i in range(len(body)):
                        if server.stopping.wait(server.trickle_interval):
                            return
                        self.wfile.write(body[i : i + 1])
                except OSError:  # the client gave up
                    pass

            def _stall(self, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body[:16])
                except OSError:
                    return
                server.stopping.wait(30)
                self.close_connection = True

            def _held(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body[:16])
                    self.wfile.flush()
                    while not (server.release.wait(0.05) or server.stopping.is_set()):
                        pass
                    self.wfile.write(body[16:])
                except OSError:  # the client gave up
                    pass

            def _route(self, head: bool) -> None:
                path, _, query = self.path.partition("?")
                server.requests.append((self.command, path, self.headers.get("Range")))
                server.seen.append((path, {k.lower(): v for k, v in self.headers.items()}))
                parts = path.strip("/").split("/")
                if parts[0] == "loop":
                    return self._send(302, b"", {"Location": "/loop"}, head)
                if parts[0] == "goto":
                    return self._send(302, b"", {"Location": parse_qs(query)["to"][0]}, head)
                if parts[0] == "private" and parts[1] in server.files:
                    if self.headers.get("Authorization") != f"Bearer {server.token}":
                        return self._send(401, b"token needed", {"Content-Type": "text/plain"}, head)
                    return self._send(200, server.files[parts[1]], {"Content-Type": "application/octet-stream"}, head)
                if parts[0] == "trickle" and parts[1] in server.files:
                    return self._trickle(server.files[parts[1]], {})
                if parts[0] == "stall" and parts[1] in server.files:
                    return self._stall(server.files[parts[1]], {})
                if parts[0] == "held" and parts[1] in server.files:
                    return self._held(server.files[parts[1]])
                if parts[0] == "ranged-stall" and parts[1] in server.files:
                    if self.headers.get("Range") or parts[1] in server._broken_once:
                        return self._ranged(server.files[parts[1]], parts[1], head)
                    server._broken_once.add(parts[1])
                    return self._stall(server.files[parts[1]], {"Accept-Ranges": "bytes"})
                if parts[0] == "declared":
                    self._send(200, b"\0" * 16, {}, head, length=int(parts[1]))
                    self.close_connection = True
                    return None
                if parts[0] == "endless":
                    self.send_response(200)
                    self.end_headers()  # no Content-Length: the body ends when the connection does
                    try:
                        remaining = int(parts[1])
                        while remaining > 0 and not server.stopping.is_set():
                            self.wfile.write(b"\0" * min(remaining, 4096))
                            remaining -= 4096
                    except OSError:
                        pass
                    self.close_connection = True
                    return None
                if parts[0] == "silent":
                    server.stopping.wait(30)  # not even a status line
                    self.close_connection = True
                    return None
                if parts[0] == "empty":
                    return self._send(200, b"", {}, head)
                if parts[0] == "xhtml":
                    return self._send(200, b"<html/>", {"Content-Type": "application/xhtml+xml"}, head)
                if parts[0] in {"always-breaks", "ignores-range", "pieces", "norange"} and parts[1] in server.files:
                    return self._resumes(parts[0], server.files[parts[1]], parts[1])
                if parts[0] == "badrange" and parts[1] in server.files:
                    body = server.files[parts[1]]
                    base = {"Accept-Ranges": "bytes"}
                    if self.headers.get("Range"):
                        return self._send(206, body, {**base, "Content-Range": f"bytes 0-{len(body) - 1}/{len(body)}"})
                    self._send(200, body[: len(body) // 3], base, head, length=len(body))
                    self.close_connection = True
                    return None
                if parts[0] == "files" and parts[1] in server.files:
                    return self._send(200, server.files[parts[1]], {"Content-Type": "application/octet-stream"}, head)
                if parts[0] == "named" and parts[1] in server.files:
                    return self._send(
                        200,
                        server.files[parts[1]],
                        {"Content-Disposition": 'attachment; filename="..\\\\evil.safetensors"'},
                        head,
                    )
                if parts[0] == "redirect":
                    return self._send(302, b"", {"Location": f"/files/{parts[1]}"}, head)
                if parts[0] == "html":
                    return self._send(200, b"<html>login</html>", {"Content-Type": "text/html; charset=utf-8"}, head)
                if parts[0] == "truncated" and parts[1] in server.files:
                    body = server.files[parts[1]]
                    self._send(200, body[: len(body) // 2], {}, head, length=len(body))
                    self.close_connection = True
                    return None
                if parts[0] == "ranged" and parts[1] in server.files:
                    return self._ranged(server.files[parts[1]], parts[1], head)
                if parts[:2] == ["api", "models"]:
                    repo = "/".join(parts[2:4])
                    if repo not in server.repos:
                        return self._send(
                            404,
                            b'{"error":"Repository not found"}',
                            {"Content-Type": "application/json", "X-Error-Code": "RepoNotFound"},
                            head,
                        )
                    siblings = [
                        {"rfilename": n, "size": server.listed_sizes.get(n, len(b))}
                        for n, b in sorted(server.repos[repo].items())
                    ]
                    body = json.dumps({"id": repo, "sha": COMMIT, "siblings": siblings}).encode()
                    return self._send(200, body, {"Content-Type": "application/json"}, head)
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo, name = "/".join(parts[:2]), "/".join(parts[4:])
                    data = server.repos.get(repo, {}).get(name)
                    if data is None:
                        return self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, head)
                    etag = hashlib.sha256(data).hexdigest()
                    if name in server.slow and not head:
                        return self._trickle(data, {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"'})
                    return self._send(
                        200,
                        data,
                        {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"', "Content-Type": "application/octet-stream"},
                        head,
                    )
                return self._send(404, b"not found", {"Content-Type": "text/plain"}, head)

            def _resumes(self, kind: str, body: bytes, name: str) -> None:
                """The first answer breaks off after a third; what later (Range) requests get depends on ``kind``."""
                header = self.headers.get("Range")
                start = int(header.removeprefix("bytes=").split("-")[0]) if header else 0
                first = name not in server._broken_once
                server._broken_once.add(name)
                if kind == "always-breaks" or first:
                    status = 206 if start else 200
                    headers = {"Accept-Ranges": "bytes"}
                    if start:
                        headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                    cut = start + (server.piece if kind == "always-breaks" else len(body) // 3)
                    self._send(status, body[start:cut], headers, length=len(body) - start)
                    self.close_connection = True
                    return None
                if kind == "ignores-range":
                    return self._send(200, body, {"Accept-Ranges": "bytes"})
                end = min(len(body), start + server.piece) if kind == "pieces" else len(body)
                headers = {"Accept-Ranges": "bytes"} if server.piece_accept_ranges else {}
                if kind == "pieces":
                    headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(body)}"
                return self._send(206, body[start:end], headers)

            def _ranged(self, body: bytes, name: str, head: bool) -> None:
                header = self.headers.get("Range")
                base = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
                if header:
                    start = int(header.removeprefix("bytes=").split("-")[0])
                    rest = body[start:]
                    size = server.range_total or len(body)
                    return self._send(
                        206, rest, {**base, "Content-Range": f"bytes {start}-{len(body) - 1}/{size}"}, head
                    )
                if name not in server._broken_once:
                    server._broken_once.add(name)
                    self._send(200, body[: len(body) // 3], base, head, length=len(body))
                    self.close_connection = True
                    return None
                return self._send(200, body, base, head)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def authorizations(self) -> list[tuple[str, str | None]]:
        """(path, Authorization header or None) of every request so far."""
        return [(path, headers.get("authorization")) for path, headers in self.seen]

    def add_file(self, path: Path) -> str:
        self.files[path.name] = path.read_bytes()
        return path.name

    def __enter__(self) -> ModelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()  # frees the handlers that trickle, stall or are held
        self.httpd.shutdown()
        self.httpd.server_close()
