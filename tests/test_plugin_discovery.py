"""Discovery through real entry points of pip-installed packs: broken packs are recorded and skipped."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from invoke_host.config import HostConfig
from invoke_host.host import build_host
from invoke_host.plugin_loader import FIRST_PARTY_ENTRY_POINTS, _name_and_version

PACK_PLUGINS = ["good_pack", "broken_import_pack", "broken_hook_pack", "other_pack", "mixed_pack", "typo_pack"]


def _host(**config: object):  # type: ignore[no-untyped-def]
    return build_host(HostConfig(plugins_allow=config.pop("allow", PACK_PLUGINS), **config), entry_points=True)


def _records(host) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return {r.name: r for r in host.registry.plugins}


def test_good_pack_nodes_are_registered_with_their_distribution(with_packs: Path) -> None:
    host = _host()
    good = _records(host)["good_pack"]
    assert good.status == "loaded"
    assert (good.distribution, good.version) == ("invoke-good-pack", "1.2.3")
    assert good.registered["invocations"] == ["good_greet", "good_shout"]
    assert host.registry.invocations["good_greet"].plugin == "good_pack"
    node = host.registry.invocation_adapter.validate_python({"id": "n", "type": "good_greet", "name": "ada"})
    assert type(node).__name__ == "GreetInvocation"


def test_pack_that_fails_to_import_is_recorded_and_skipped(with_packs: Path, caplog: pytest.LogCaptureFixture) -> None:
    host = _host()
    broken = _records(host)["broken_import_pack"]
    assert broken.status == "failed"
    assert broken.distribution == "invoke-broken-import-pack"
    assert "ModuleNotFoundError" in (broken.error or "")
    assert "a_module_that_is_not_installed" in (broken.traceback or "")
    assert any("broken_import_pack" in m and "skipped" in m for m in caplog.messages)
    # Every pack after it in load order still loaded.
    assert _records(host)["typo_pack"].status == "failed"
    assert _records(host)["other_pack"].status == "loaded"


def test_pack_whose_hook_raises_keeps_nothing_it_offered(with_packs: Path) -> None:
    host = _host()
    record = _records(host)["broken_hook_pack"]
    assert record.status == "failed"
    assert "RuntimeError" in (record.error or "") and "always fails" in (record.error or "")
    assert "broken_hook_node" not in host.registry.invocations
    assert record.registered == {}


def test_duplicate_type_id_keeps_the_first_and_names_both_plugins(with_packs: Path) -> None:
    host = _host()
    assert host.registry.invocations["good_greet"].plugin == "good_pack"
    other = _records(host)["other_pack"]
    assert other.status == "loaded"
    assert other.registered["invocations"] == ["other_unique"]
    [message] = other.refused
    assert message == (
        "node type 'good_greet' from plugin 'other_pack' (invoke-other-pack 0.2.0) is refused: plugin 'good_pack' "
        "(invoke-good-pack 1.2.3) registered it first (packs load in order of distribution name); to use this one "
        "instead, block that one with INVOKE_HOST_PLUGINS_BLOCK=good_pack"
    )


def test_blocking_the_first_pack_lets_the_second_have_the_name(with_packs: Path) -> None:
    host = _host(allow=["good_pack", "other_pack"], plugins_block=["good_pack"])
    assert host.registry.invocations["good_greet"].plugin == "other_pack"
    assert _records(host)["other_pack"].refused == []


def test_invalid_node_classes_are_refused_one_by_one(with_packs: Path) -> None:
    host = _host()
    mixed = _records(host)["mixed_pack"]
    assert mixed.registered["invocations"] == ["mixed_fine"]
    refused = "\n".join(mixed.refused)
    assert len(mixed.refused) == 3
    assert "UndecoratedNode has no node type" in refused
    assert "BadDefaultNode has a default that does not fit its field (count" in refused
    assert "BadOutputNode.invoke() must be annotated to return a class decorated with @invocation_output" in refused


def test_misspelled_hook_is_a_plugin_error(with_packs: Path) -> None:
    record = _records(_host())["typo_pack"]
    assert record.status == "failed"
    assert "register_invocation" in (record.error or "")


def test_block_list_and_allow_list(with_packs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_HOST_PLUGINS_BLOCK", "broken_import_pack, invoke-other-pack")
    host = build_host(HostConfig(), entry_points=True)
    records = _records(host)
    assert records["broken_import_pack"].status == "blocked"
    assert records["other_pack"].status == "blocked"
    assert records["good_pack"].status == "loaded"

    monkeypatch.setenv("INVOKE_HOST_PLUGINS_ALLOW", "good_pack")
    records = _records(build_host(HostConfig(), entry_points=True))
    assert records["good_pack"].status == "loaded"
    assert all(r.status == "blocked" for name, r in records.items() if name != "good_pack")


def test_autoload_switch_turns_entry_points_off(with_packs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_HOST_DISABLE_PLUGIN_AUTOLOAD", "1")
    host = build_host(HostConfig())
    assert host.registry.plugins == ()
    assert "good_greet" not in host.registry.invocations


def test_load_order_is_deterministic_with_first_party_plugins_first(with_packs: Path) -> None:
    first = [r.name for r in _host().registry.plugins]
    assert first == [r.name for r in _host().registry.plugins]
    order = [(not r.first_party, r.distribution) for r in _host().registry.plugins]
    assert order == sorted(order)
    assert order[0] == (False, "invoke-core-events")  # before aaa-takeover-pack, which sorts first by name


def test_the_first_party_table_lists_exactly_the_plugins_this_repository_ships() -> None:
    shipped = {}
    for pyproject in (Path(__file__).parent.parent / "plugins").glob("*/pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        if "entry-points" not in project:
            continue  # invokeai-compat provides import names only; each wrapped pack has its own entry point
        [(name, module)] = project["entry-points"]["invoke_host.plugins"].items()
        shipped[project["name"]] = (name, module)
    assert FIRST_PARTY_ENTRY_POINTS == shipped


def test_distribution_name_and_version_are_what_the_metadata_parser_reads() -> None:
    # Discovery reads only the header block of each distribution's metadata file; for every distribution installed
    # here it must give what importlib.metadata's full parse gives.
    dists = list(metadata.distributions())
    assert len(dists) > 50
    for dist in dists:
        assert _name_and_version(dist) == (dist.metadata["Name"], dist.metadata["Version"]), dist


def test_distribution_headers_end_at_the_first_blank_line(tmp_path: Path) -> None:
    info = tmp_path / "real_name-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nSummary: a summary\n  folded onto a second line\nname: real-name\nVersion: 1.2.3\n"
        "Name: a second name header\n\nName: impostor in the long description\nVersion: 9.9.9\n"
    )
    empty = tmp_path / "nothing.dist-info"
    empty.mkdir()
    assert _name_and_version(metadata.PathDistribution(info)) == ("real-name", "1.2.3")
    assert _name_and_version(metadata.PathDistribution(empty)) == (None, None)
