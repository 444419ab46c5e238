"""``./scripts/serve`` installs only when the install inputs changed; ``./scripts/bootstrap`` always installs.

The scripts run for real in a copy of the checkout's layout whose ``.venv`` holds a stand-in ``python`` (it
writes down each pip command instead of installing) and a stand-in ``invoke-host``: a real install takes
minutes, and what is under test is the scripts' decision, not pip.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

_FAKE_PYTHON = """#!/usr/bin/env bash
# Writes down a pip command; reads the script on stdin of `python -` (the stale-plugin check) and prints nothing.
if [ "${1:-}" = "-" ]; then cat >/dev/null; exit 0; fi
echo "$*" >> "$(dirname "$0")/../../calls.log"
"""
_FAKE_CLI = """#!/usr/bin/env bash
echo "invoke-host $*" >> "$(dirname "$0")/../../calls.log"
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The files the scripts read, as in the repository, with a ``.venv`` of stand-ins."""
    (tmp_path / "scripts").mkdir()
    for script in ("bootstrap", "serve"):
        shutil.copy2(ROOT / "scripts" / script, tmp_path / "scripts" / script)
    for name in ("pyproject.toml", "requirements-torch.txt", "sdk/pyproject.toml", "plugins/core_nodes/pyproject.toml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tmp_path / name)
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    _executable(venv_bin / "python", _FAKE_PYTHON)
    _executable(venv_bin / "invoke-host", _FAKE_CLI)
    return tmp_path


_COMPILE = "-m compileall -q -j 0 sdk/invoke_sdk invoke_host plugins"


def _run(checkout: Path, *command: str) -> list[str]:
    """Run a script of ``checkout``; return the commands the stand-ins were given but the bytecode compile (each
    run's one, checked apart), then forget them."""
    calls = _run_all(checkout, *command)
    assert calls.count(_COMPILE) == 1, calls
    return [c for c in calls if c != _COMPILE]


def _run_all(checkout: Path, *command: str) -> list[str]:
    """Run a script of ``checkout``; return every command the stand-ins were given, then forget them."""
    log = checkout / "calls.log"
    log.unlink(missing_ok=True)
    done = subprocess.run(
        [str(checkout / "scripts" / command[0]), *command[1:]],
        env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return log.read_text().splitlines() if log.exists() else []


def _installs(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("-m pip install")]


def test_serve_installs_once_then_starts_without_installing_until_an_input_changes(checkout: Path) -> None:
    first = _run(checkout, "serve", "--port", "9999")
    assert len(_installs(first)) == 2  # the torch pin, then the editable installs
    assert first[-1] == "invoke-host serve --port 9999"

    assert _run(checkout, "serve", "--port", "9999") == ["invoke-host serve --port 9999"]

    with (checkout / "plugins" / "core_nodes" / "pyproject.toml").open("a") as f:
        f.write("\n# a new dependency would go here\n")
    changed = _run(checkout, "serve")
    assert len(_installs(changed)) == 2 and changed[-1] == "invoke-host serve"
    assert _run(checkout, "serve") == ["invoke-host serve"]


def test_a_new_plugin_folder_or_a_moved_checkout_installs_again(checkout: Path, tmp_path: Path) -> None:
    _run(checkout, "serve")
    extra = checkout / "plugins" / "new_plugin"
    extra.mkdir()
    shutil.copy2(ROOT / "plugins" / "core_nodes" / "pyproject.toml", extra / "pyproject.toml")
    [_torch_pin, editables] = _installs(_run(checkout, "serve"))
    assert "-e ./plugins/new_plugin/" in editables

    # A copied .venv's editable installs point at the checkout it was made in.
    moved = tmp_path.parent / f"{tmp_path.name}-moved"
    shutil.copytree(checkout, moved, symlinks=True)
    try:
        assert len(_installs(_run(moved, "serve"))) == 2
        assert _run(moved, "serve") == ["invoke-host serve"]
    finally:
        shutil.rmtree(moved)


def test_bootstrap_always_installs_in_full(checkout: Path) -> None:
    _run(checkout, "serve")
    assert len(_installs(_run(checkout, "bootstrap"))) == 2
    assert len(_installs(_run(checkout, "bootstrap"))) == 2
    # ...and leaves the stamp a later serve trusts.
    assert _run(checkout, "serve") == ["invoke-host serve"]


def test_every_run_compiles_the_checkouts_code_once_installed_and_before_the_server_starts(checkout: Path) -> None:
    # Editable installs get no bytecode, and with PYTHONDONTWRITEBYTECODE every start would compile every module.
    first = _run_all(checkout, "serve")
    assert first.index(_COMPILE) > max(i for i, c in enumerate(first) if c.startswith("-m pip install"))
    assert first[-1] == "invoke-host serve"
    assert _run_all(checkout, "serve") == [_COMPILE, "invoke-host serve"]  # nothing to install: compiles all the same
    full = _run_all(checkout, "bootstrap")
    assert full[-1] == _COMPILE and len(_installs(full)) == 2
