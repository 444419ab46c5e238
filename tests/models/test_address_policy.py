"""Address policy behaviour that was right before the hardening and must stay so (the threat tests are in
tests/security/test_download_ssrf.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from invoke_host.models.address_policy import AddressPolicy, BlockedAddressError, check_endpoint
from invoke_host.models.policy_network_backend import PolicyNetworkBackend
from tests.models.servers import ModelServer

LOOPBACK_ONLY = AddressPolicy(allow_loopback=True)


@pytest.fixture
def served() -> Iterator[ModelServer]:
    with ModelServer() as srv:
        yield srv


def test_allowed_splits_addresses_from_reasons_in_order() -> None:
    ok, refused = AddressPolicy(allow_loopback=True).allowed(["10.0.0.1", "127.0.0.1", "169.254.169.254", "::1"])
    assert ok == ["127.0.0.1", "::1"]
    assert [r.split(" ")[0] for r in refused] == ["10.0.0.1", "169.254.169.254"]


def test_a_host_name_is_not_an_address() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        AddressPolicy().refusal("localhost")


async def test_the_real_resolver_is_judged_too(served: ModelServer) -> None:
    backend = PolicyNetworkBackend(AddressPolicy())
    with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.1 is a loopback address"):
        await backend.connect_tcp("localhost", served.port)
    stream = await PolicyNetworkBackend(LOOPBACK_ONLY).connect_tcp("127.0.0.1", served.port)
    await stream.aclose()


async def test_unix_sockets_are_never_used() -> None:
    with pytest.raises(BlockedAddressError, match=r"^unix sockets are not used for downloads$"):
        await PolicyNetworkBackend(LOOPBACK_ONLY).connect_unix_socket("/run/docker.sock")


def test_an_endpoint_through_the_real_resolver() -> None:
    with pytest.raises(
        BlockedAddressError, match=re.escape("refusing the endpoint http://127.0.0.1:9: 127.0.0.1 is a loopback")
    ):
        check_endpoint("http://127.0.0.1:9", AddressPolicy())
    check_endpoint("http://127.0.0.1:9", LOOPBACK_ONLY)
