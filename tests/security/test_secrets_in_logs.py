"""Secrets stay out of logs and out of ``ps``: the token comes from a file or the environment, never the
URL or the command line, and every log handler blanks whatever secret a client still puts in a URL."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from invoke_host.cli import main
from invoke_host.config import HostConfig
from tests.security.real_server import RealServer, real_server

REDACTED = "[redacted]"
TOKEN = "tok-3f9a1c77e2b04d5e"
HF_TOKEN = "hf_AbCdEf0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """A real server with a token from --token-file, logging at its most detailed level."""
    folder = tmp_path_factory.mktemp("secrets")
    token_file = folder / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    with real_server(folder / "root", "--token-file", str(token_file), "--log-level", "debug") as running:
        yield running


def _exercise(server: RealServer) -> None:
    """Send the token every way a client might, right and wrong."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    in_url = server.request("GET", f"/api/v1/nodes?token={TOKEN}")
    assert in_url.status == 400
    assert "Authorization: Bearer <token>" in in_url.json()["detail"]
    assert server.request("GET", "/api/v1/plugins", headers=auth).status == 200
    assert server.request("GET", "/api/v1/plugins", headers={"X-Invoke-Token": TOKEN}).status == 200
    assert server.request("GET", "/api/v1/plugins", headers={"Authorization": f"Bearer {TOKEN}x"}).status == 401
    # Another secret a client may put in a URL: the Hugging Face token of a model install.
    server.request("GET", f"/api/v2/models/scan_folder?scan_path=/nonexistent&access_token={HF_TOKEN}", headers=auth)

    ws_url = f"ws://127.0.0.1:{server.port}/ws"
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{ws_url}?token={TOKEN}", open_timeout=30).close()
    assert refused.value.response.status_code == 400
    assert "invoke-host.bearer.<token>" in json.loads(refused.value.response.body)["detail"]
    offered = ["invoke-host.events", f"invoke-host.bearer.{TOKEN}"]
    with connect(ws_url, subprotocols=offered, open_timeout=30) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "invoke-host.events"
        ws.send(json.dumps({"subscribe": "queue", "queue_id": "q"}))
        assert json.loads(ws.recv(timeout=30))["event"] == "subscribed"


def test_no_secret_reaches_the_real_servers_log(server: RealServer) -> None:
    _exercise(server)
    log = server.log()
    assert "/api/v1/nodes?token=[redacted]" in log  # the access log line is there, without the token
    assert f"access_token={REDACTED}" in log
    assert TOKEN not in log
    assert HF_TOKEN not in log


def test_the_token_is_not_on_the_servers_command_line(server: RealServer) -> None:
    cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().split(b"\0")
    assert b"--token-file" in cmdline
    assert not any(TOKEN.encode() in arg for arg in cmdline)


def test_token_on_the_command_line_is_refused_with_what_to_use(tmp_path: Path) -> None:
    for args in (["--token", TOKEN], [f"--token={TOKEN}"]):
        result = CliRunner().invoke(main, ["serve", "--root", str(tmp_path), *args])
        assert result.exit_code == 2
        assert "--token is no longer accepted" in result.output
        assert "--token-file PATH" in result.output and "INVOKE_HOST_TOKEN" in result.output


def test_the_token_comes_from_a_file_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n")
    assert HostConfig(token_file=token_file).token == TOKEN
    monkeypatch.setenv("INVOKE_HOST_TOKEN_FILE", str(token_file))
    assert HostConfig().token == TOKEN
    monkeypatch.delenv("INVOKE_HOST_TOKEN_FILE")
    monkeypatch.setenv("INVOKE_HOST_TOKEN", TOKEN)
    assert HostConfig().token == TOKEN
    assert TOKEN not in repr(HostConfig())
    with pytest.raises(ValueError, match="not both"):
        HostConfig(token_file=token_file)
    monkeypatch.delenv("INVOKE_HOST_TOKEN")
    with pytest.raises(ValueError, match="cannot read the access token"):
        HostConfig(token_file=tmp_path / "missing")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        HostConfig(token_file=tmp_path / "empty")
    with pytest.raises(ValueError, match="token_urlsafe"):
        HostConfig(token="has spaces, commas")


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1:5 - "GET /ws?token={s} HTTP/1.1" 400',
        '"GET /api/v2/models/install?source=x/y&access_token={s}&variant=fp16 HTTP/1.1" 201',
        "GET /x?hf_token={s}",
        "GET /x?api_key={s}#frag",
        "GET /x?a=1&password={s}",
        "GET /x?client_secret={s}",
        "Authorization: Bearer {s}",
        "[(b'authorization', b'Basic {s}')]",
        "Sec-WebSocket-Protocol: invoke-host.events, invoke-host.bearer.{s}",
    ],
)
def test_redaction_blanks_every_kind_of_secret(line: str) -> None:
    from invoke_host.security.log_redaction import redact

    secret = "Zq8s0m3v4lu3"
    redacted = redact(line.format(s=secret))
    assert secret not in redacted and REDACTED in redacted
    assert redact("GET /api/v1/images?limit=10&offset=20") == "GET /api/v1/images?limit=10&offset=20"


def test_the_filter_redacts_arguments_in_place_and_the_configured_token_anywhere() -> None:
    from invoke_host.security.log_redaction import SecretRedactingFilter

    filt = SecretRedactingFilter([TOKEN])
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", f"/ws?token={TOKEN}", "1.1", 400), None)
    assert filt.filter(record)
    # Still five arguments in their places: uvicorn's access formatter reads them by position.
    assert record.args == ("127.0.0.1:5", "GET", f"/ws?token={REDACTED}", "1.1", 400)
    scope = logging.LogRecord("uvicorn.asgi", 5, __file__, 1, "ASGI scope %s",
                              ({"headers": [(b"x-invoke-token", TOKEN.encode())]},), None)
    filt.filter(scope)
    assert TOKEN not in scope.getMessage()
    try:
        raise ValueError(f"bad token {TOKEN}")
    except ValueError:
        failed = logging.LogRecord("invoke_host", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    filt.filter(failed)
    assert TOKEN not in logging.Formatter().format(failed)
