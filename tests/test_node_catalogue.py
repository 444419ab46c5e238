"""The node catalogue: a start with unchanged packs registers their nodes from it and imports each class on first
use, and registers, validates and documents exactly what a start that ran every hook does."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from invoke_host.config import HostConfig
from invoke_host.graph import registry_fingerprint, validate_graph
from invoke_host.host import build_host
from invoke_host.registry import RegistrationError

PACKS = ["good_pack", "broken_import_pack", "broken_hook_pack", "other_pack", "mixed_pack", "typo_pack"]
CATALOGUE = "node-catalogue.json"


def _host(root: Path, **config: Any) -> Any:
    return build_host(HostConfig(root=root, plugins_allow=config.pop("allow", PACKS), **config), entry_points=True)


def _forget(*packages: str) -> None:
    """Drop imported pack modules, as a new process starts without them."""
    for name in [m for m in sys.modules if m.split(".")[0] in packages]:
        del sys.modules[name]


def _records(host: Any) -> list[tuple[Any, ...]]:
    return [(r.name, r.status, r.error, r.registered, r.refused) for r in host.registry.plugins]


@pytest.fixture
def site(packs_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the installed packs on sys.path, for tests that change its files."""
    copy = tmp_path / "site"
    shutil.copytree(packs_site, copy)
    monkeypatch.syspath_prepend(str(copy))
    yield copy
    _forget("good_pack")


GREET = {"nodes": {"g": {"type": "good_greet", "name": "ada"}}, "edges": []}


def test_a_second_start_registers_the_same_from_the_catalogue_without_running_the_hook(
    with_packs: Path, tmp_path: Path
) -> None:
    cold = _host(tmp_path)
    assert (tmp_path / CATALOGUE).is_file()
    _forget("good_pack", "other_pack", "mixed_pack")
    warm = _host(tmp_path)
    # The hook imports good_pack.nodes; from the catalogue nothing imports it until a node of it is used.
    assert "good_pack.nodes" not in sys.modules
    assert not warm.registry.invocations.is_loaded("good_greet")
    assert list(warm.registry.invocations) == list(cold.registry.invocations)
    assert list(warm.registry.outputs) == list(cold.registry.outputs)
    assert dict(warm.registry.output_types) == dict(cold.registry.output_types)
    # Records, refusals included (other_pack's duplicate, mixed_pack's three bad classes), are those of the cold start.
    assert _records(warm) == _records(cold)
    assert registry_fingerprint(warm.registry) == registry_fingerprint(cold.registry)

    result = validate_graph(warm.registry, GREET)
    assert result.valid, result.errors
    assert "good_pack.nodes" in sys.modules
    assert type(result.graph.nodes["g"]).__name__ == "GreetInvocation"  # type: ignore[union-attr]
    assert result.graph.to_json_dict() == validate_graph(cold.registry, GREET).graph.to_json_dict()  # type: ignore[union-attr]
    assert warm.registry.output_of("good_greet").__name__ == cold.registry.output_of("good_greet").__name__


def test_errors_from_a_restored_registry_are_those_of_a_cold_one(with_packs: Path, tmp_path: Path) -> None:
    cold = _host(tmp_path)
    _forget("good_pack")
    warm = _host(tmp_path)
    bad = {"nodes": {"g": {"type": "good_greet", "name": 3}, "x": {"type": "good_gret"}}, "edges": []}
    assert validate_graph(warm.registry, bad).errors == validate_graph(cold.registry, bad).errors


def test_a_restart_serves_the_same_documents_without_importing_a_node_class(
    with_packs: Path, tmp_path: Path
) -> None:
    import msgspec

    from invoke_host.app import create_app
    from invoke_host.node_templates import node_templates
    from invoke_host.openapi_document import openapi_document

    cold = _host(tmp_path)
    cold_document = json.dumps(openapi_document(create_app(host=cold)))
    cold_templates = msgspec.json.encode(node_templates(cold.registry))
    _forget("good_pack", "other_pack", "mixed_pack")
    warm = _host(tmp_path)
    assert json.dumps(openapi_document(create_app(host=warm))) == cold_document
    assert msgspec.json.encode(node_templates(warm.registry)) == cold_templates
    # Both documents came from what the first start kept beside the catalogue.
    assert not any(warm.registry.invocations.is_loaded(k) for k in warm.registry.invocations)
    assert "good_pack.nodes" not in sys.modules
    assert {p.name for p in tmp_path.iterdir()} >= {
        CATALOGUE, "node-catalogue.components.json", "node-catalogue.templates.json"}


def test_documents_kept_for_another_catalogue_are_not_used(with_packs: Path, tmp_path: Path) -> None:
    from invoke_host.node_templates import node_templates

    _host(tmp_path)
    first = _host(tmp_path, allow=["good_pack"])  # another set of plugins: the catalogue is written again
    assert [t.type for t in node_templates(first.registry) if t.plugin == "good_pack"] == ["good_greet", "good_shout"]
    _forget("good_pack", "other_pack", "mixed_pack")
    again = _host(tmp_path)  # the first set again: written again too, so the templates kept for it no longer fit
    templates = node_templates(again.registry)
    assert {t.type for t in templates} >= {"good_greet", "good_shout", "other_unique", "mixed_fine"}


def test_a_changed_pack_file_makes_the_next_start_run_every_hook(
    site: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _host(tmp_path / "root", allow=["good_pack"])
    nodes = site / "good_pack" / "nodes.py"
    nodes.write_text(nodes.read_text().replace('"good_shout"', '"good_yell"'))
    _forget("good_pack")
    with caplog.at_level(logging.INFO, logger="invoke_host.registry"):
        host = _host(tmp_path / "root", allow=["good_pack"])
    assert "good_yell" in host.registry.invocations and "good_shout" not in host.registry.invocations
    assert any("changed since the node catalogue was written" in m for m in caplog.messages)
    assert host.registry.invocations.is_loaded("good_yell")  # the hook ran: its classes were built now
    _forget("good_pack")
    again = _host(tmp_path / "root", allow=["good_pack"])
    assert "good_yell" in again.registry.invocations and not again.registry.invocations.is_loaded("good_yell")


def test_a_distribution_installed_or_removed_on_the_path_makes_the_next_start_run_every_hook(
    site: Path, tmp_path: Path
) -> None:
    _host(tmp_path / "root", allow=["good_pack"])
    _forget("good_pack")
    assert not _host(tmp_path / "root", allow=["good_pack"]).registry.invocations.is_loaded("good_greet")
    # What pip does to a site folder: a new top-level entry (a dependency a pack's nodes may import).
    (site / "some_dependency").mkdir()
    _forget("good_pack")
    assert _host(tmp_path / "root", allow=["good_pack"]).registry.invocations.is_loaded("good_greet")


def test_a_class_that_no_longer_imports_is_a_graph_error_on_its_node(
    site: Path, tmp_path: Path
) -> None:
    _host(tmp_path / "root", allow=["good_pack"])
    path = tmp_path / "root" / CATALOGUE
    data = json.loads(path.read_text())
    next(n for n in data["plugins"]["good_pack"]["nodes"] if n[0] == "good_greet")[1] = "good_pack.gone"
    path.write_text(json.dumps(data))
    _forget("good_pack")
    host = _host(tmp_path / "root", allow=["good_pack"])
    [error] = validate_graph(host.registry, GREET).errors
    assert (error.node_id, error.field) == ("g", "type")
    assert "could not be loaded from good_pack.gone.GreetInvocation" in error.message
    assert "restart the host" in error.message
    assert not path.exists()


def test_another_set_of_plugins_is_not_served_from_the_catalogue(with_packs: Path, tmp_path: Path) -> None:
    _host(tmp_path)
    _forget("good_pack", "other_pack")
    # Blocking good_pack gives other_pack the type id it was refused before: the catalogue must not be used.
    host = _host(tmp_path, allow=PACKS, plugins_block=["good_pack"])
    assert host.registry.invocations["good_greet"].plugin == "other_pack"
    assert dict(host.registry.plugins[[r.name for r in host.registry.plugins].index("other_pack")].registered)[
        "invocations"] == ["good_greet", "other_unique"]


def test_a_damaged_catalogue_is_ignored_and_written_again(
    with_packs: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / CATALOGUE).write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="invoke_host.registry"):
        host = _host(tmp_path)
    assert "good_greet" in host.registry.invocations
    assert any("is not one this host wrote" in m for m in caplog.messages)
    assert json.loads((tmp_path / CATALOGUE).read_text())["format"] == 1


def test_a_restored_class_that_is_not_the_recorded_one_fails_by_name_and_drops_the_catalogue(
    with_packs: Path, tmp_path: Path
) -> None:
    _host(tmp_path)
    path = tmp_path / CATALOGUE
    data = json.loads(path.read_text())
    nodes = data["plugins"]["good_pack"]["nodes"]
    # Each entry is [type, module, qualname, version, output]: point good_greet at the other class.
    greet = next(n for n in nodes if n[0] == "good_greet")
    shout = next(n for n in nodes if n[0] == "good_shout")
    greet[2] = shout[2]
    path.write_text(json.dumps(data))
    _forget("good_pack")
    host = _host(tmp_path)
    with pytest.raises(RegistrationError, match=r"'good_greet' from plugin 'good_pack' could not be loaded .* node "
                       "catalogue"):
        _ = host.registry.invocations["good_greet"]
    assert not path.exists()
    _forget("good_pack")
    assert _host(tmp_path).registry.invocations["good_greet"].value.__name__ == "GreetInvocation"


def test_no_catalogue_when_turned_off_or_for_plugins_handed_over_in_code(with_packs: Path, tmp_path: Path) -> None:
    _host(tmp_path / "off", node_catalogue=False)
    assert not (tmp_path / "off" / CATALOGUE).exists()
    build_host(HostConfig(root=tmp_path / "explicit"), plugins=[], entry_points=False)
    assert not (tmp_path / "explicit" / CATALOGUE).exists()
