"""Shared fixtures: the sample third-party packs, installed with pip as real distributions."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Litestar's TestClient sends 'Host: testserver.local' and schemathesis 'Host: testserver', names the server's
# host check refuses by default.
os.environ.setdefault("INVOKE_HOST_ALLOWED_HOSTS", "testserver.local,testserver")

PACKS_DIR = Path(__file__).parent / "fixtures" / "packs"
PACK_NAMES = [
    "good_pack", "broken_import_pack", "broken_hook_pack", "other_pack", "mixed_pack", "typo_pack",
    "exit_hook_pack", "aaa_takeover_pack", "route_pack",
]


def pip_install_target(target: Path, *projects: Path) -> None:
    """Install projects with pip into ``target`` (no deps: invoke-sdk is already in this venv)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--target", str(target), *map(str, projects)],
        check=True,
    )


@pytest.fixture(scope="session")
def packs_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site directory holding every sample pack, installed by pip with real entry-point metadata."""
    target = tmp_path_factory.mktemp("packs-site")
    pip_install_target(target, *(PACKS_DIR / name for name in PACK_NAMES))
    return target


@pytest.fixture(scope="session")
def wait_pack_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site directory holding only wait_pack (a node that waits for a file, one that reports steps, a route that
    fails): apart from the other packs, whose log lines would mix in, and whose tests its 500 would fail."""
    target = tmp_path_factory.mktemp("wait-pack-site")
    pip_install_target(target, PACKS_DIR / "wait_pack")
    return target


@pytest.fixture
def with_wait_pack(wait_pack_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """wait_pack on sys.path, found through its entry point as it would be in a real install."""
    monkeypatch.syspath_prepend(str(wait_pack_site))
    yield wait_pack_site
    for name in [m for m in sys.modules if m.split(".")[0] == "wait_pack"]:
        del sys.modules[name]


@pytest.fixture
def with_packs(packs_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put the installed packs on sys.path, so entry-point discovery sees them as it would in a real install."""
    monkeypatch.syspath_prepend(str(packs_site))
    yield packs_site
    for name in list(sys.modules):
        if name.split(".")[0] in PACK_NAMES:
            del sys.modules[name]


# A real PostgreSQL server, started once per session by the tests that ask for it (see postgres_server.py).
from tests.postgres_server import postgres_server, postgres_url  # noqa: E402, F401
