"""A real HTTP server on 127.0.0.1 for URL installs and for huggingface_hub (HF_ENDPOINT)."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["ModelServer"]

COMMIT = "a" * 40


class ModelServer:
    """Serves ``files`` (name -> bytes) at ``/files/<name>``; ``/ranged/<name>`` supports Range and breaks the
    first transfer off half way; ``/html``, ``/missing``, ``/truncated/<name>``, ``/redirect/<name>``; and a tiny
    hub: ``/api/models/<repo>`` and ``/<repo>/resolve/<rev>/<path>`` from ``repos`` (repo -> {path: bytes})."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.repos: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str, str | None]] = []
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

            def _route(self, head: bool) -> None:
                path = self.path.split("?")[0]
                server.requests.append((self.command, path, self.headers.get("Range")))
                parts = path.strip("/").split("/")
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
                    import json

                    siblings = [{"rfilename": n, "size": len(b)} for n, b in sorted(server.repos[repo].items())]
                    body = json.dumps({"id": repo, "sha": COMMIT, "siblings": siblings}).encode()
                    return self._send(200, body, {"Content-Type": "application/json"}, head)
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo, name = "/".join(parts[:2]), "/".join(parts[4:])
                    data = server.repos.get(repo, {}).get(name)
                    if data is None:
                        return self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, head)
                    etag = hashlib.sha256(data).hexdigest()
                    return self._send(
                        200,
                        data,
                        {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"', "Content-Type": "application/octet-stream"},
                        head,
                    )
                return self._send(404, b"not found", {"Content-Type": "text/plain"}, head)

            def _ranged(self, body: bytes, name: str, head: bool) -> None:
                header = self.headers.get("Range")
                base = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
                if header:
                    start = int(header.removeprefix("bytes=").split("-")[0])
                    rest = body[start:]
                    return self._send(
                        206, rest, {**base, "Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}, head
                    )
                if name not in server._broken_once:
                    server._broken_once.add(name)
                    self._send(200, body[: len(body) // 3], base, head, length=len(body))
                    self.close_connection = True
                    return None
                return self._send(200, body, base, head)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add_file(self, path: Path) -> str:
        self.files[path.name] = path.read_bytes()
        return path.name

    def __enter__(self) -> ModelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
