"""Server-side request forgery through model downloads: which addresses an install may reach, and how.

Every address class is pinned (with each combination of the two allow settings), every DNS answer shape
(one, several, mixed, none, failing), and every connect path (the judged IP, never the name; each
redirect hop; TLS still by host name). DNS is the one boundary a test cannot steer, so tests give the
backend a resolver; everything after it (sockets, servers, TLS) is real.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpcore
import httpx
import pytest

from invoke_host.models.address_policy import AddressPolicy, BlockedAddressError, check_endpoint
from invoke_host.models.policy_network_backend import PolicyNetworkBackend
from invoke_host.models.policy_transport import PolicyTransport
from invoke_host.models.url_download import DownloadError, download_url
from tests.models.servers import ModelServer

OK, LOOP, PRIV, NEVER, LOOP_AND_PRIV = "ok", "loopback", "private", "never", "loopback+private"

ADDRESSES = [
    # public IPv4, including the first address past each special range
    ("8.8.8.8", OK),
    ("9.255.255.255", OK),
    ("11.0.0.0", OK),
    ("100.63.255.255", OK),
    ("100.128.0.0", OK),
    ("172.32.0.0", OK),
    ("198.20.0.0", OK),
    # link-local and cloud metadata: never
    ("169.254.169.254", NEVER),
    ("169.254.0.1", NEVER),
    ("100.100.100.200", NEVER),
    ("192.0.0.192", NEVER),
    # not unicast: never
    ("0.0.0.0", NEVER),
    ("0.1.2.3", NEVER),
    ("224.0.0.1", NEVER),
    ("239.255.255.250", NEVER),
    ("240.0.0.1", NEVER),
    ("255.255.255.255", NEVER),
    # loopback
    ("127.0.0.1", LOOP),
    ("127.255.255.254", LOOP),
    # private and special-purpose
    ("10.0.0.1", PRIV),
    ("100.64.0.0", PRIV),
    ("100.127.255.255", PRIV),
    ("100.100.100.201", PRIV),
    ("172.16.0.1", PRIV),
    ("172.31.255.255", PRIV),
    ("192.0.0.1", PRIV),
    ("192.0.2.1", PRIV),
    ("192.88.99.1", PRIV),
    ("192.168.1.1", PRIV),
    ("198.18.0.1", PRIV),
    ("198.19.255.255", PRIV),
    ("198.51.100.1", PRIV),
    ("203.0.113.1", PRIV),
    # IPv6
    ("2606:4700:4700::1111", OK),
    ("2001:200::1", OK),
    ("::1", LOOP),
    ("::", NEVER),
    ("fe80::1", NEVER),
    ("fe80::1%eth0", NEVER),
    ("febf::1", NEVER),
    ("fd00:ec2::254", NEVER),
    ("fd00:ec2::253", PRIV),
    ("fc00::1", PRIV),
    ("fdff::1", PRIV),
    ("fec0::1", PRIV),
    ("ff02::1", NEVER),
    ("ff05::1:3", NEVER),
    ("100::1", NEVER),
    ("4000::1", NEVER),
    ("5f00::1", NEVER),
    ("2001:db8::1", PRIV),
    ("3fff::1", PRIV),
    ("2001:2::1", PRIV),
    ("2001:1ff::1", PRIV),
    # IPv4-mapped: exactly the IPv4 address
    ("::ffff:8.8.8.8", OK),
    ("::ffff:127.0.0.1", LOOP),
    ("::ffff:10.0.0.1", PRIV),
    ("::ffff:100.64.0.1", PRIV),
    ("::ffff:169.254.169.254", NEVER),
    ("::ffff:224.0.0.1", NEVER),
    # NAT64 well-known prefix: exactly the IPv4 address behind the gateway
    ("64:ff9b::8.8.8.8", OK),
    ("64:ff9b::10.0.0.1", PRIV),
    ("64:ff9b::127.0.0.1", LOOP),
    ("64:ff9b::169.254.169.254", NEVER),
    # local-use NAT64, 6to4, Teredo: private themselves, and judged by what they embed
    ("64:ff9b:1::808:808", PRIV),
    ("64:ff9b:1::a9fe:a9fe", NEVER),
    ("2002:808:808::", PRIV),
    ("2002:a00:1::", PRIV),
    ("2002:a9fe:a9fe::1", NEVER),
    ("2002:7f00:1::", LOOP_AND_PRIV),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", PRIV),
    ("2001:0:808:808::5601:5601", NEVER),  # Teredo client 169.254.169.254 (stored inverted)
    ("2001:0:a9fe:a9fe::f7f7:f7f7", NEVER),  # Teredo server 169.254.169.254
    # IPv4-compatible and IPv4-translated: never, whatever they embed
    ("::8.8.8.8", NEVER),
    ("::127.0.0.1", NEVER),
    ("::ffff:0:8.8.8.8", NEVER),
]

FLAGS = [(False, False), (True, False), (False, True), (True, True)]


def _expected_allowed(kind: str, allow_private: bool, allow_loopback: bool) -> bool:
    return {
        OK: True,
        NEVER: False,
        LOOP: allow_loopback,
        PRIV: allow_private,
        LOOP_AND_PRIV: allow_loopback and allow_private,
    }[kind]


@pytest.mark.parametrize(("address", "kind"), ADDRESSES)
@pytest.mark.parametrize(("allow_private", "allow_loopback"), FLAGS)
def test_every_address_class_under_every_setting(
    address: str, kind: str, allow_private: bool, allow_loopback: bool
) -> None:
    reason = AddressPolicy(allow_private=allow_private, allow_loopback=allow_loopback).refusal(address)
    if _expected_allowed(kind, allow_private, allow_loopback):
        assert reason is None
        return
    assert reason is not None
    assert reason.startswith(str(ipaddress.ip_address(address.split("%")[0])))
    if kind == NEVER:
        assert reason.endswith("never allowed")
    elif kind == LOOP or (kind == LOOP_AND_PRIV and not allow_loopback):
        assert "a loopback address" in reason
        assert reason.endswith("allow it with download_allow_loopback (INVOKE_HOST_DOWNLOAD_ALLOW_LOOPBACK=true)")
    else:
        assert "a private address" in reason
        assert reason.endswith("allow it with download_allow_private (INVOKE_HOST_DOWNLOAD_ALLOW_PRIVATE=true)")


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("100.64.0.1", "100.64.0.1 is a private address (carrier-grade NAT shared space, 100.64.0.0/10)"),
        ("169.254.169.254", "169.254.169.254 is a link-local / cloud-metadata address"),
        ("224.0.0.1", "224.0.0.1 is not a unicast host address (multicast, 224.0.0.0/4)"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1 (IPv4-mapped) leads to 127.0.0.1, which is a loopback address"),
        ("64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe (NAT64) leads to 169.254.169.254, which is a link-local"),
        ("2002:a9fe:a9fe::1", "2002:a9fe:a9fe::1 (6to4) embeds 169.254.169.254, which is a link-local"),
        ("2001:0:808:808::5601:5601", "(Teredo client) embeds 169.254.169.254"),
        ("2001:0:a9fe:a9fe::f7f7:f7f7", "(Teredo server) embeds 169.254.169.254"),
        ("64:ff9b:1::a9fe:a9fe", "(local-use NAT64) embeds 169.254.169.254"),
        ("5f00::1", "5f00::1 is not a unicast host address (outside 2000::/3, the global unicast space)"),
    ],
)
def test_refusals_say_what_the_address_is(address: str, says: str) -> None:
    reason = AddressPolicy().refusal(address)
    assert reason is not None and says in reason


# --- the connection layer: every DNS answer shape, every connect path ----------------------------------------


class Recorder(httpcore.AsyncNetworkBackend):
    """The real anyio backend, noting every address it is asked to connect to."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []
        self.options: list[dict[str, Any]] = []
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        self.options.append({"timeout": timeout, "local_address": local_address, "socket_options": socket_options})
        return await self._real.connect_tcp(host, port, timeout=timeout, local_address=local_address)

    async def sleep(self, seconds: float) -> None:
        await self._real.sleep(seconds)


class FakeDNS:
    """Answers for names the real resolver must never see (``.invalid`` cannot resolve anywhere)."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        try:
            ipaddress.ip_address(host)
            return [host]
        except ValueError:
            pass
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.answers[host])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served() -> Iterator[ModelServer]:
    with ModelServer() as srv:
        srv.files["m.bin"] = b"model-bytes" * 100
        yield srv


async def _get(url: str, dns: FakeDNS, recorder: Recorder, policy: AddressPolicy, **kw: Any) -> httpx.Response:
    backend = PolicyNetworkBackend(policy, resolve=dns, inner=recorder)
    async with httpx.AsyncClient(transport=PolicyTransport(policy, backend=backend, **kw), trust_env=False) as client:
        return await client.get(url)


LOOPBACK_ONLY = AddressPolicy(allow_loopback=True)


async def test_connects_to_the_judged_ip_never_to_the_name(served: ModelServer) -> None:
    dns, recorder = FakeDNS({"model.invalid": ["127.0.0.1"]}), Recorder()
    response = await _get(f"http://model.invalid:{served.port}/files/m.bin", dns, recorder, LOOPBACK_ONLY)
    assert response.status_code == 200 and response.content == served.files["m.bin"]
    assert dns.asked == ["model.invalid"]
    assert recorder.connects == [("127.0.0.1", served.port)]
    assert served.seen[-1][1]["host"] == f"model.invalid:{served.port}"  # the request still names the host


@pytest.mark.parametrize(
    ("answer", "connected"),
    [
        (["10.0.0.1", "127.0.0.1"], ["127.0.0.1"]),  # a refused answer first
        (["127.0.0.1", "169.254.169.254"], ["127.0.0.1"]),  # a refused answer last
        (["127.0.0.1", "127.0.0.1"], ["127.0.0.1"]),  # the same answer twice is one try
        (["127.0.0.2", "127.0.0.1"], ["127.0.0.2", "127.0.0.1"]),  # a dead allowed address, then the next
        (["::ffff:10.0.0.1", "::ffff:127.0.0.1"], ["::ffff:127.0.0.1"]),
    ],
)
async def test_each_answer_is_judged_and_only_allowed_ones_are_tried(
    served: ModelServer, answer: list[str], connected: list[str]
) -> None:
    dns, recorder = FakeDNS({"model.invalid": answer}), Recorder()
    url = f"http://model.invalid:{served.port}/files/m.bin"
    assert (await _get(url, dns, recorder, LOOPBACK_ONLY)).status_code == 200
    assert recorder.connects == [(a, served.port) for a in connected]


@pytest.mark.parametrize(
    "answer",
    [["10.0.0.1"], ["10.0.0.1", "169.254.169.254"], ["::ffff:169.254.169.254", "fe80::1", "224.0.0.1"]],
)
async def test_only_refused_answers_mean_no_connection_at_all(answer: list[str]) -> None:
    dns, recorder = FakeDNS({"model.invalid": answer}), Recorder()
    with pytest.raises(BlockedAddressError) as refused:
        await _get("http://model.invalid/files/m.bin", dns, recorder, LOOPBACK_ONLY)
    assert recorder.connects == []
    reasons = [LOOPBACK_ONLY.refusal(a) for a in answer]  # every reason is given
    assert str(refused.value) == f"refusing to connect to model.invalid: {'; '.join(map(str, reasons))}"


async def test_connect_options_reach_the_socket_for_the_judged_ip(served: ModelServer) -> None:
    recorder = Recorder()
    backend = PolicyNetworkBackend(LOOPBACK_ONLY, resolve=FakeDNS({"model.invalid": ["127.0.0.1"]}), inner=recorder)
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    stream = await backend.connect_tcp(
        "model.invalid", served.port, timeout=7.5, local_address="127.0.0.1", socket_options=options
    )
    await stream.aclose()
    assert recorder.connects == [("127.0.0.1", served.port)]
    assert recorder.options == [{"timeout": 7.5, "local_address": "127.0.0.1", "socket_options": options}]


async def test_an_empty_answer_connects_nowhere() -> None:
    dns, recorder = FakeDNS({"model.invalid": []}), Recorder()
    with pytest.raises(BlockedAddressError, match=r"refusing to connect to model\.invalid: no address"):
        await _get("http://model.invalid/", dns, recorder, LOOPBACK_ONLY)
    assert recorder.connects == []


async def test_a_name_that_does_not_resolve_is_a_connect_error() -> None:
    dns, recorder = FakeDNS({}), Recorder()
    with pytest.raises(httpx.ConnectError, match=r"cannot resolve nowhere\.invalid"):
        await _get("http://nowhere.invalid/", dns, recorder, LOOPBACK_ONLY, retries=0)
    assert recorder.connects == []


async def test_when_every_allowed_address_is_dead_each_failure_is_told() -> None:
    port = _closed_port()
    dns, recorder = FakeDNS({"model.invalid": ["127.0.0.1", "127.0.0.2"]}), Recorder()
    with pytest.raises(httpx.ConnectError) as failed:
        await _get(f"http://model.invalid:{port}/", dns, recorder, LOOPBACK_ONLY, retries=0)
    assert recorder.connects == [("127.0.0.1", port), ("127.0.0.2", port)]
    assert re.fullmatch(
        rf"could not connect to model\.invalid on port {port}: "
        rf"127\.0\.0\.1 \(ConnectError: [^)]+\); 127\.0\.0\.2 \(ConnectError: [^)]+\)",
        str(failed.value),
    )


async def test_the_backend_sleeps_through_its_inner_backend() -> None:
    class Sleeper(Recorder):
        slept: list[float] = []

        async def sleep(self, seconds: float) -> None:
            self.slept.append(seconds)

    inner = Sleeper()
    await PolicyNetworkBackend(LOOPBACK_ONLY, inner=inner).sleep(0.01)
    assert inner.slept == [0.01]


# --- redirects: every hop is judged -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "refused"),
    [
        ("http://metadata.invalid/latest/meta-data/", "169.254.169.254 is a link-local"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local"),
        ("http://[::ffff:a9fe:a9fe]/latest/", "leads to 169.254.169.254"),
        ("http://100.100.100.200/latest/meta-data/", "Alibaba Cloud metadata"),
        ("http://10.0.0.1/admin", "10.0.0.1 is a private address"),
        ("http://[2002:a00:1::]/", "6to4 tunnel"),
    ],
)
async def test_a_redirect_to_a_refused_address_never_connects(
    served: ModelServer, tmp_path: Path, target: str, refused: str
) -> None:
    dns, recorder = FakeDNS({"metadata.invalid": ["169.254.169.254"]}), Recorder()
    transport = PolicyTransport(LOOPBACK_ONLY, backend=PolicyNetworkBackend(LOOPBACK_ONLY, resolve=dns, inner=recorder))
    with pytest.raises(BlockedAddressError, match=refused):
        await download_url(
            f"{served.url}/goto?to={quote(target, safe='')}", tmp_path, policy=LOOPBACK_ONLY, transport=transport
        )
    assert recorder.connects == [("127.0.0.1", served.port)]  # the first hop only
    assert list(tmp_path.iterdir()) == []


async def test_a_redirect_to_another_scheme_is_refused(served: ModelServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="redirected to a URL that is not http"):
        await download_url(f"{served.url}/goto?to=file:///etc/passwd", tmp_path, policy=LOOPBACK_ONLY)
    with pytest.raises(DownloadError, match="only http and https URLs can be installed, not 'ftp://x/y'"):
        await download_url("ftp://x/y", tmp_path, policy=LOOPBACK_ONLY)


async def test_a_redirect_loop_ends(served: ModelServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="redirected more than 10 times"):
        await download_url(f"{served.url}/loop", tmp_path, policy=LOOPBACK_ONLY)
    assert len(served.seen) == 11


# --- TLS: the socket goes to the IP, the certificate is checked against the host name ---------------------------


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    try:
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
                *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}"),
                *("-addext", f"subjectAltName=DNS:{name}"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except FileNotFoundError:
        pytest.skip("openssl is not installed")
    return cert, key


@pytest.mark.parametrize(("cert_name", "works"), [("model.invalid", True), ("other.invalid", False)])
async def test_tls_verifies_the_host_name_not_the_ip(tmp_path: Path, cert_name: str, works: bool) -> None:
    cert, key = _certificate(tmp_path, cert_name)
    (tmp_path / "dl").mkdir()
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    client_side = ssl.create_default_context(cafile=str(cert))
    with ModelServer(tls=server_side) as srv:
        srv.files["m.bin"] = b"over tls"
        dns, recorder = FakeDNS({"model.invalid": ["127.0.0.1"]}), Recorder()
        url = f"https://model.invalid:{srv.port}/files/m.bin"
        if works:  # through the download code itself
            backend = PolicyNetworkBackend(LOOPBACK_ONLY, resolve=dns, inner=recorder)
            transport = PolicyTransport(LOOPBACK_ONLY, backend=backend, ssl_context=client_side)
            path = await download_url(url, tmp_path / "dl", policy=LOOPBACK_ONLY, transport=transport)
            assert path.read_bytes() == b"over tls"
        else:
            with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                await _get(url, dns, recorder, LOOPBACK_ONLY, ssl_context=client_side, retries=0)
        assert recorder.connects == [("127.0.0.1", srv.port)]


# --- Hugging Face endpoints: every address must be allowed ----------------------------------------------------


class BlockingDNS:
    def __init__(self, answer: list[str] | OSError) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if isinstance(self.answer, OSError):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        (["8.8.8.8"], None),
        (["8.8.8.8", "2606:4700:4700::1111"], None),
        (["8.8.8.8", "10.0.0.1"], "10.0.0.1 is a private address"),
        (["10.0.0.1", "fe80::1"], "private-use, 10.0.0.0/8\\); allow it .*=true\\); fe80::1 is a link-local"),
        (["10.0.0.1", "8.8.8.8"], "10.0.0.1 is a private address"),
        (["8.8.8.8", "::ffff:127.0.0.1"], "leads to 127.0.0.1"),
        (["8.8.8.8", "169.254.169.254"], "link-local"),
        ([], "resolves to no address"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "cannot resolve the hub 'hub.invalid'"),
    ],
)
def test_an_endpoint_is_refused_if_any_answer_is(answer: list[str] | OSError, refused: str | None) -> None:
    dns = BlockingDNS(answer)
    if refused is None:
        check_endpoint("https://hub.invalid", AddressPolicy(), what="hub", resolve=dns)
    else:
        with pytest.raises(BlockedAddressError, match=refused):
            check_endpoint("https://hub.invalid", AddressPolicy(), what="hub", resolve=dns)
    assert dns.asked == ["hub.invalid"]


@pytest.mark.parametrize(
    "url", ["ftp://hub.invalid", "file:///etc/hosts", "hub.invalid:443", "https://", "gopher://hub.invalid:70"]
)
def test_an_endpoint_must_be_an_http_url(url: str) -> None:
    dns = BlockingDNS(["8.8.8.8"])
    with pytest.raises(BlockedAddressError, match=r"the Hugging Face endpoint .* is not an http\(s\) URL"):
        check_endpoint(url, AddressPolicy(), what="Hugging Face endpoint", resolve=dns)
    assert dns.asked == []
