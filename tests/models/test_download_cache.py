"""The download cache behind context.models.download_and_cache_model, against a real HTTP server and hub."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from invoke_sdk.cancellation import InvocationCanceledError

from invoke_host.model_cache import ModelCache, ModelsService
from invoke_host.models.address_policy import AddressPolicy, BlockedAddressError
from invoke_host.models.cache_sources import RepoSource, parse_cache_source
from invoke_host.models.download_cache import DownloadCache, DownloadCanceledError
from invoke_host.models.download_limits import DownloadLimitError, DownloadLimits
from tests.models.servers import ModelServer
from tests.waiting import wait_until

LOOPBACK = AddressPolicy(allow_loopback=True)


def make_cache(tmp_path: Path, *, max_bytes: int = 10**9, policy: AddressPolicy = LOOPBACK,
               limits: DownloadLimits | None = None) -> DownloadCache:
    models = tmp_path / "models"
    return DownloadCache(models / ".download_cache", models / ".tmp", policy=policy,
                         limits=limits or DownloadLimits(), max_bytes=max_bytes)


def leftovers(cache: DownloadCache) -> list[Path]:
    """Every file in the cache and staging folders (what a failed download must not leave)."""
    return sorted(p for folder in (cache.folder, cache.staging) if folder.exists() for p in folder.rglob("*")
                  if p.is_file())


def gets(server: ModelServer, path: str) -> int:
    return sum(1 for method, seen, _ in server.requests if method == "GET" and seen == path)


def test_a_url_is_downloaded_once_and_then_found_without_the_network(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    with ModelServer() as server:
        server.files["hed.pth"] = b"weights" * 100
        first = cache.fetch(f"{server.url}/files/hed.pth")
        assert first.downloaded and first.path.name == "hed.pth" and first.path.read_bytes() == b"weights" * 100
        assert first.path.resolve().is_relative_to(cache.folder.resolve())
        url = server.url
    # The server is gone: only the cache can answer.
    again = cache.fetch(f"{url}/files/hed.pth")
    assert (again.path, again.downloaded) == (first.path, False)
    assert cache.used_bytes() == 700
    assert list(cache.staging.iterdir()) == []


def test_two_nodes_asking_for_one_url_at_once_download_it_once(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    with ModelServer() as server:
        server.files["slow.bin"] = b"s" * 40  # /trickle sends a byte per 20 ms: the second asks mid-transfer
        url = f"{server.url}/trickle/slow.bin"
        results: list[Path] = []
        started = threading.Event()

        def fetch() -> None:
            results.append(cache.fetch(url, on_progress=lambda done, total: started.set()).path)

        threads = [threading.Thread(target=fetch) for _ in range(2)]
        threads[0].start()
        wait_until(started.is_set, "the first download to begin")
        threads[1].start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(results) == 2 and results[0] == results[1] and results[0].read_bytes() == b"s" * 40
        assert gets(server, "/trickle/slow.bin") == 1


def test_a_download_larger_than_the_cache_is_refused_naming_the_setting(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, max_bytes=100)
    with ModelServer() as server:
        server.files["big.bin"] = b"b" * 101
        with pytest.raises(DownloadLimitError) as err:
            cache.fetch(f"{server.url}/files/big.bin")
    assert "more than max_download_cache_bytes (INVOKE_HOST_MAX_DOWNLOAD_CACHE_BYTES=100)" in str(err.value)
    assert leftovers(cache) == []


def test_least_recently_used_entries_not_in_use_make_room(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, max_bytes=250)
    with ModelServer() as server:
        for name in "abcd":
            server.files[name] = name.encode() * 100
        a = cache.fetch(f"{server.url}/files/a")
        cache.fetch(f"{server.url}/files/b")
        cache.fetch(f"{server.url}/files/a")  # a used again: b is now the least recently used
        c = cache.fetch(f"{server.url}/files/c", pin=True)
        assert not (cache.folder / parse_cache_source(f"{server.url}/files/b").key).exists()
        assert a.path.exists() and c.path.exists() and cache.used_bytes() == 200
        cache.pin(a.key)
        # a and c are in use (a run was handed them): d cannot fit, and nothing is evicted for it.
        with pytest.raises(DownloadLimitError, match=r"the entries in use hold 200 of max_download_cache_bytes "
                                                     r"\(INVOKE_HOST_MAX_DOWNLOAD_CACHE_BYTES=250\)"):
            cache.fetch(f"{server.url}/files/d")
        assert a.path.exists() and c.path.exists()
        cache.release(a.key)
        d = cache.fetch(f"{server.url}/files/d")
        assert d.path.exists() and c.path.exists() and not a.path.exists()
    assert list(cache.staging.iterdir()) == []


def test_the_address_policy_refuses_loopback_unless_allowed(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, policy=AddressPolicy())
    with ModelServer() as server:
        server.files["x.bin"] = b"x" * 10
        with pytest.raises(BlockedAddressError, match=r"download_allow_loopback \(INVOKE_HOST_DOWNLOAD_ALLOW_LOOPBACK"):
            cache.fetch(f"{server.url}/files/x.bin")
        # Every redirect hop is judged too: a public-looking first hop cannot lead to the metadata address.
        allowed = make_cache(tmp_path / "b", policy=AddressPolicy(allow_loopback=True, allow_private=True))
        with pytest.raises(BlockedAddressError, match="cloud metadata"):
            allowed.fetch(f"{server.url}/goto?to=http://169.254.169.254/latest")
        assert gets(server, "/files/x.bin") == 0
    assert leftovers(cache) == [] and leftovers(allowed) == []


def test_a_cancel_mid_download_stops_it_and_keeps_nothing(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    cancel = threading.Event()
    with ModelServer() as server:
        server.files["slow.bin"] = b"s" * 2000

        def progress(done: int, total: int | None) -> None:
            if done >= 5:
                cancel.set()

        with pytest.raises(DownloadCanceledError):
            cache.fetch(f"{server.url}/trickle/slow.bin", cancelled=cancel.is_set, on_progress=progress)
    assert leftovers(cache) == []


def test_a_node_cancel_stops_the_download_as_a_canceled_run(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    service = ModelsService(lambda key: None, {}, ModelCache(ram_limit_bytes=10**6, vram_limit_bytes=0),
                            downloads=cache)
    cancel = threading.Event()
    reports: list[tuple[str, float | None]] = []

    def progress(message: str, percentage: float | None, image: object) -> None:
        reports.append((message, percentage))
        if percentage is not None and percentage >= 0.01:
            cancel.set()

    models = service.for_run(cancel, progress)
    with ModelServer() as server:
        server.files["slow.bin"] = b"s" * 500
        with pytest.raises(InvocationCanceledError):
            models.download_and_cache_model(f"{server.url}/trickle/slow.bin")
    assert reports[0] == (f"Downloading model {server.url}/trickle/slow.bin", None)
    percentages = [p for _, p in reports[1:]]
    assert percentages == sorted(set(percentages)) and 0 < percentages[-1] < 1  # at most once per percent
    assert leftovers(cache) == []


def test_a_run_pins_what_it_was_handed_until_it_ends(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, max_bytes=150)
    service = ModelsService(lambda key: None, {}, ModelCache(ram_limit_bytes=10**6, vram_limit_bytes=0),
                            downloads=cache)
    with ModelServer() as server:
        server.files["a"], server.files["b"] = b"a" * 100, b"b" * 100
        run = service.for_run(threading.Event(), lambda *args: None)
        held = run.download_and_cache_model(f"{server.url}/files/a")
        with pytest.raises(DownloadLimitError, match="max_download_cache_bytes"):
            service.download_and_cache_model(f"{server.url}/files/b")
        run.close()
        service.download_and_cache_model(f"{server.url}/files/b")
        assert not held.exists()


def test_load_remote_model_keeps_the_loaded_model_in_the_model_cache(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    models = ModelCache(ram_limit_bytes=10**6, vram_limit_bytes=0, device="cpu")
    service = ModelsService(lambda key: None, {}, models, downloads=cache)
    calls: list[Path] = []

    def loader(path: Path) -> dict[str, bytes]:
        calls.append(path)
        return {"weights": path.read_bytes()}

    with ModelServer() as server:
        server.files["m.bin"] = b"m" * 64
        handle = service.load_remote_model(f"{server.url}/files/m.bin", loader)
        with handle as model:
            assert model == {"weights": b"m" * 64}
        again = service.load_remote_model(f"{server.url}/files/m.bin", loader)
        with again as model:
            assert model == {"weights": b"m" * 64}
    assert len(calls) == 1 and calls[0].name == "m.bin"
    assert handle.config.path == str(calls[0]) and handle.key.startswith("file-")
    # Another loader of the same file is another model; a changed file is loaded afresh.
    service.load_local_model(calls[0], lambda path: {"other": path.read_bytes()})
    calls[0].write_bytes(b"n" * 80)
    with service.load_local_model(calls[0], loader) as model:
        assert model == {"weights": b"n" * 80}
    assert len(calls) == 2 and models.stats().loads == 3
    with pytest.raises(ValueError, match="there is no model file or folder at"):
        service.load_local_model(tmp_path / "missing.bin", loader)


@pytest.mark.parametrize(
    "source",
    [
        "owner/name::../escape.bin",
        "owner/name::sub/../../escape.bin",
        "owner/name:://etc/passwd",
        "owner/name::%2e%2e/escape.bin",
        "owner/name::sub\\..\\..\\escape.bin",
        "../owner/name",
        "/etc/passwd",
        "file:///etc/passwd",
        "owner/name:unet",
    ],
)
def test_hostile_sources_are_refused_before_any_request(tmp_path: Path, source: str) -> None:
    with pytest.raises(ValueError):
        make_cache(tmp_path).fetch(source)
    assert not (tmp_path / "models").exists()


def test_hostile_url_names_stay_inside_the_entry(tmp_path: Path) -> None:
    cache = make_cache(tmp_path)
    with ModelServer() as server:
        server.files["w.bin"] = b"w" * 10
        # Content-Disposition: ..\\evil.safetensors; an encoded ../ in the URL path.
        named = cache.fetch(f"{server.url}/named/w.bin")
        encoded = cache.fetch(f"{server.url}/files/w.bin?x=%2F..%2F..%2Fevil")
    for found in (named, encoded):
        assert found.path.resolve().is_relative_to((cache.folder / found.key / "content").resolve())
    assert named.path.name == "evil.safetensors"
    assert [p.name for p in tmp_path.rglob("evil*")] == ["evil.safetensors"]


def test_a_hugging_face_file_and_a_whole_repo_with_a_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = make_cache(tmp_path)
    with ModelServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        server.repos["lllyasviel/Annotators"] = {
            "sub/ControlNetHED.pth": b"hed" * 10,
            "config.json": b"{}",
            "model.safetensors": b"m" * 20,
            "README.md": b"docs",
        }
        one = cache.fetch("lllyasviel/Annotators::sub/ControlNetHED.pth")
        assert one.path.read_bytes() == b"hed" * 10 and one.path.as_posix().endswith("content/sub/ControlNetHED.pth")
        repo = cache.fetch("lllyasviel/Annotators", revision="v1.0")
        assert sorted(p.name for p in repo.path.iterdir()) == ["config.json", "model.safetensors", "sub"]
        assert repo.key != cache.fetch("lllyasviel/Annotators", revision="v2.0").key
        asked = len(server.requests)
        assert cache.fetch("lllyasviel/Annotators::/sub/ControlNetHED.pth").path == one.path
        assert len(server.requests) == asked  # a hit: no network
        with pytest.raises(ValueError, match="was not found"):
            cache.fetch("nobody/nothing")
    assert parse_cache_source("a/b:fp16:unet") == RepoSource("a/b", "unet", "fp16", None)
    assert list(cache.staging.iterdir()) == []


def test_the_hub_endpoint_is_held_to_the_address_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ModelServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        server.repos["o/r"] = {"w.bin": b"w"}
        with pytest.raises(BlockedAddressError, match="HF_ENDPOINT"):
            make_cache(tmp_path, policy=AddressPolicy()).fetch("o/r::w.bin")
        assert server.requests == []


def test_the_hf_token_reaches_the_hub_and_never_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache(tmp_path)
    caplog.set_level(logging.DEBUG)
    with ModelServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", server.token)
        server.files["gated.bin"] = b"g" * 10
        assert cache.fetch(f"{server.url}/private/gated.bin").path.read_bytes() == b"g" * 10
        monkeypatch.setenv("HF_ENDPOINT", "https://huggingface.co")
        with ModelServer() as other:
            other.files["gated.bin"] = b"g" * 10
            with pytest.raises(ValueError, match="401"):
                cache.fetch(f"{other.url}/private/gated.bin")  # another host: no token sent
            assert other.authorizations() == [("/private/gated.bin", None)]
    assert server.token not in caplog.text
