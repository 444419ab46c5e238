"""The guide's example pack, installed with pip like a user would, then found and run by the host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from invoke_host.config import HostConfig
from invoke_host.engine import run_graph
from invoke_host.host import build_host

PACK = Path(__file__).parents[2] / "docs" / "examples" / "invoke-example-pack"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--disable-pip-version-check", "--target", str(target), str(PACK)],
        check=True, cwd=build, env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    return target


def test_installed_pack_appears_and_runs(installed: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(installed))
    try:
        host = build_host(HostConfig(root=tmp_path, plugins_allow=["example_pack"]), entry_points=True)
        assert {"example_repeat", "example_word_count", "example_invert", "example_lora_size"} <= set(
            host.registry.invocations
        )
        assert set(host.registry.kind("workflows")) == {"example.greet-and-count"}
        assert set(host.registry.kind("node_migrations")) == {"example_greet@1.0.0"}
        graph = {"nodes": {"r": {"type": "example_repeat", "text": "x", "times": 5}}, "edges": []}
        assert run_graph(host, graph).output("r").text == "x x x x x"  # type: ignore[attr-defined]
    finally:
        sys.path.remove(str(installed))
        for name in [m for m in sys.modules if m == "example_pack" or m.startswith("example_pack.")]:
            del sys.modules[name]


def test_pack_tests_pass_with_the_host_pytest_plugin(installed: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         str(PACK / "tests")],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 passed" in done.stdout
