"""The CLI commands that read the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from invoke_host.cli import main


@pytest.fixture
def only_packs(with_packs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_HOST_PLUGINS_ALLOW", "good_pack,broken_import_pack,other_pack")


def test_plugins_command_shows_failures_and_why(only_packs: None) -> None:
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line and not line.startswith(" ")}
    assert "loaded" in lines["good_pack"] and "invoke-good-pack 1.2.3" in lines["good_pack"]
    assert "failed" in lines["broken_import_pack"]
    assert "ModuleNotFoundError" in result.output
    assert "refused: node type 'good_greet' from plugin 'other_pack'" in result.output

    as_json = json.loads(CliRunner().invoke(main, ["plugins", "--json"]).output)
    assert {p["name"]: p["status"] for p in as_json}["broken_import_pack"] == "failed"


def test_nodes_command_lists_types_with_their_plugin(only_packs: None) -> None:
    result = CliRunner().invoke(main, ["nodes"])
    assert result.exit_code == 0
    rows = [line.split() for line in result.output.splitlines()]
    assert ["good_greet", "Greet", "good_pack"] in rows
    templates = json.loads(CliRunner().invoke(main, ["nodes", "--json"]).output)
    assert {t["type"] for t in templates} >= {"good_greet", "other_unique"}


def test_openapi_command_prints_the_full_document(only_packs: None) -> None:
    result = CliRunner().invoke(main, ["openapi"])
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert "good_greet" in doc["components"]["schemas"]["AnyInvocation"]["discriminator"]["mapping"]
    assert "/api/v1/plugins" in doc["paths"]
