from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from invoke_host.cli import main
from tests.models import model_files as mf


def test_models_cli_install_list_scan_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI loads plugins from entry points: the first-party ones are installed editable.
    monkeypatch.setenv("INVOKE_HOST_PLUGINS_ALLOW", "sd_probers,sqlite_storage")
    root = str(tmp_path / "root")
    src = mf.write_embedding(tmp_path / "src" / "tok.safetensors", "sd-2")
    runner = CliRunner()
    result = runner.invoke(main, ["models", "install", "--root", root, str(src), "--set", "name=Token"])
    assert result.exit_code == 0, result.output
    assert "Installed Token (sd-2 embedding" in result.output
    listed = runner.invoke(main, ["models", "list", "--root", root])
    assert "Token" in listed.output and "embedding_file" in listed.output
    key = listed.output.split()[0]
    scan = runner.invoke(main, ["models", "scan", "--root", root, str(src.parent)])
    assert scan.output.split()[0] == "new"
    bad = runner.invoke(main, ["models", "delete", "--root", root, "nope"])
    assert bad.exit_code == 1 and "no model with key 'nope'" in bad.output
    assert runner.invoke(main, ["models", "delete", "--root", root, key]).exit_code == 0
    assert "No models installed" in runner.invoke(main, ["models", "list", "--root", root]).output


def test_delete_says_whether_files_were_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOKE_HOST_PLUGINS_ALLOW", "sd_probers,sqlite_storage")
    root = str(tmp_path / "root")
    runner = CliRunner()
    placed = mf.write_embedding(tmp_path / "src" / "placed.safetensors", "sd-2")
    in_place = mf.write_embedding(tmp_path / "keep" / "kept.safetensors", "sd-1")
    assert runner.invoke(main, ["models", "install", "--root", root, str(placed)]).exit_code == 0
    assert runner.invoke(main, ["models", "install", "--root", root, "--inplace", str(in_place)]).exit_code == 0
    listed = json.loads(runner.invoke(main, ["models", "list", "--root", root, "--json"]).output)
    keys = {c["name"]: c["key"] for c in listed}

    deleted = runner.invoke(main, ["models", "delete", "--root", root, keys["placed"]])
    assert deleted.exit_code == 0 and "Deleted placed" in deleted.output and "and its files" in deleted.output
    kept = runner.invoke(main, ["models", "delete", "--root", root, keys["kept"]])
    assert kept.exit_code == 0, kept.output
    assert "Unregistered kept" in kept.output and "its files stay where they are" in kept.output
    assert in_place.is_file()
