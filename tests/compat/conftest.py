"""The sample InvokeAI-style packs, wrapped by `invoke-host packs wrap` and installed with pip into a site folder."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from invoke_host.cli import main
from tests.conftest import pip_install_target

SAMPLES = Path(__file__).parent / "packs"
SAMPLE_PACKAGES = ("retro_tools", "old_paths_pack")


@pytest.fixture(scope="session")
def wrapped_projects(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each sample folder wrapped into a project under one folder, through the CLI as a user runs it."""
    out = tmp_path_factory.mktemp("wrapped")
    for folder in ("retro-tools", "old_paths_pack"):
        result = CliRunner().invoke(main, ["packs", "wrap", str(SAMPLES / folder), "--out", str(out)])
        assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def compat_site(wrapped_projects: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wrapped projects installed by pip (real dist-info, real entry points) into a site folder."""
    target = tmp_path_factory.mktemp("compat-site")
    pip_install_target(target, *sorted(p for p in wrapped_projects.iterdir() if (p / "pyproject.toml").is_file()))
    return target


@pytest.fixture
def with_compat_packs(compat_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The installed sample packs on sys.path, found through their entry points."""
    monkeypatch.syspath_prepend(str(compat_site))
    yield compat_site
    for name in [m for m in sys.modules if m.split(".")[0] in SAMPLE_PACKAGES]:
        del sys.modules[name]
