from __future__ import annotations

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
