"""What start-up must not import: libraries only some requests use, each of which cost every start a noticeable part
of a second (docs/benchmarks.md, start-up). They are imported where they are first needed instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KEPT_OFF = ("httpx", "httpcore", "psycopg", "numpy", "rich", "pygments", "pydantic_settings", "torch", "diffusers",
            "transformers", "safetensors", "spandrel", "huggingface_hub", "accelerate", "PIL",
            "imohash", "pickletools", "difflib", "blake3")
"""httpx (model downloads; its ``import`` loads its command-line module, rich and pygments with it), psycopg (the
PostgreSQL backend, whose package the host imports for its entry point on every start), numpy (edge maps), httpcore
(the download connections' backend, 35-48 ms), pydantic_settings (the config reads its variables itself: 30 ms),
the model libraries the node plugins use only while a node runs (importing torch + diffusers costs seconds), and
Pillow (``PIL.Image``, 14-16 ms), which only decoding, encoding and changing images use, and imohash (8 ms, the
models' change check when they are synced), and pickletools (4 ms: the scan of pickled models), difflib (the hint
for an unknown node type) and blake3 (hashing a model), 6 ms together."""

BUILD_APP = """
import json, sys
from invoke_host.app import create_app
from invoke_host.config import HostConfig
import invoke_host.cli
create_app(HostConfig(root=sys.argv[1]))
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.argv[2])))))
"""


def test_building_the_app_with_every_first_party_plugin_imports_none_of_the_heavy_libraries(tmp_path: Path) -> None:
    # A fresh interpreter: this test process has imported them all already.
    out = subprocess.run(
        [sys.executable, "-c", BUILD_APP, str(tmp_path / "root"), json.dumps(KEPT_OFF)],
        capture_output=True, text=True, timeout=300, check=True,
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], (
        f"start-up imported {loaded}: import it inside the function that needs it, with a comment saying it keeps "
        "the library off start-up (see docs/benchmarks.md, start-up)"
    )


WARM_NODE_MODULES = """
import json, sys
from invoke_host.app import create_app
from invoke_host.config import HostConfig
create_app(HostConfig(root=sys.argv[1]))
print(json.dumps(sorted(set(json.loads(sys.argv[2])) & set(sys.modules))))
"""


def test_a_start_from_the_node_catalogue_imports_no_first_party_node_module(tmp_path: Path) -> None:
    # The first start writes the catalogue; the second starts from it, so the first-party plugins' node modules
    # (pydantic classes, most of what those plugins cost) must wait for a graph or document that uses them, as a
    # third-party pack's do, however the plugins' packages and their other hooks import.
    root, cwd = tmp_path / "root", tmp_path / "cwd"
    cwd.mkdir()  # the folder on sys.path[0]: its modification time is part of what the catalogue was written for
    subprocess.run([sys.executable, "-c", WARM_NODE_MODULES, str(root), "[]"], cwd=cwd, capture_output=True,
                   timeout=300, check=True)
    catalogue = json.loads((root / "node-catalogue.json").read_text())
    node_modules = sorted({node[1] for plugin in catalogue["plugins"].values() for node in plugin["nodes"]})
    assert "invoke_image_nodes.nodes" in node_modules and "invoke_core_nodes.math" in node_modules
    out = subprocess.run([sys.executable, "-c", WARM_NODE_MODULES, str(root), json.dumps(node_modules)], cwd=cwd,
                         capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_postgres_package_still_offers_its_names_when_asked() -> None:
    import invoke_postgres_storage
    from invoke_postgres_storage.backend import PostgresBackend
    from invoke_postgres_storage.migrator import Migration

    assert invoke_postgres_storage.PostgresBackend is PostgresBackend
    assert invoke_postgres_storage.Migration is Migration
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        _ = invoke_postgres_storage.Nothing


RESTART_POINT = """
import json, os, sys


def execv(path, args):
    # Where `serve` starts itself again on the system allocator (invoke_host.memory): what is imported by then was
    # imported for nothing.
    # subprocess: ctypes.util.find_library runs `ldconfig -p` in one, and the packs command's module imports it.
    print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {"pydantic", "litestar"}
                            or name in {"invoke_host.config", "invoke_host.packs_cli", "subprocess"})))
    os._exit(0)


os.execv = execv
os.environ.pop("PYTHONMALLOC", None)
sys.argv = [os.path.join(os.path.dirname(sys.executable), "invoke-host"), *sys.argv[1:]]
from invoke_host.cli import main
main()
"""


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_start_again_before_importing_the_config_pydantic_or_subprocess(
    command: str, tmp_path: Path
) -> None:
    import invoke_host.memory

    if invoke_host.memory._MALLOC_TRIM is None or not sys.platform.startswith("linux"):
        pytest.skip("the process starts again only on glibc (invoke_host.memory)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
    out = subprocess.run(
        [sys.executable, "-c", RESTART_POINT, command, "--root", str(tmp_path / "root")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stderr
    imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert imported == [], (
        f"`invoke-host {command}` imported {imported} before starting again on the system allocator: the restarted "
        "process imports them anew, so this cost every start twice (import them inside the command, after it)"
    )


LAUNCHER_RESTART_POINT = """
import json, os, sys


def execv(path, args):
    # The launcher's restart: what is imported by now is imported again by the restarted interpreter.
    print(json.dumps({"path": path, "args": args, "orig": sys.orig_argv, "malloc": os.environ.get("PYTHONMALLOC"),
                      "modules": sorted(name for name in sys.modules if name.split(".")[0] in {"click", "pydantic",
                      "litestar", "subprocess", "logging", "threading"} or name.startswith("invoke_host."))}))
    os._exit(0)


os.execv = execv
os.environ.pop("PYTHONMALLOC", None)
sys.argv = [os.path.join(os.path.dirname(sys.executable), "invoke-host"), *sys.argv[1:]]
from invoke_host.launcher import main
main()
print(json.dumps({"ran": "without a restart"}))
"""


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_the_program_restarts_serve_and_worker_before_importing_click_or_the_cli(command: str, tmp_path: Path) -> None:
    import invoke_host.memory

    if invoke_host.memory._MALLOC_TRIM is None or not sys.platform.startswith("linux"):
        pytest.skip("the process starts again only on glibc (invoke_host.memory)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
    out = subprocess.run(
        [sys.executable, "-c", LAUNCHER_RESTART_POINT, command, "--root", str(tmp_path / "root")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen.get("modules") == ["invoke_host.allocator", "invoke_host.launcher"], (
        f"`invoke-host {command}` imported {seen.get('modules')} before starting again on the system allocator: "
        "the restarted process imports them anew (invoke_host/launcher.py decides with os, sys, ctypes and "
        "invoke_host.allocator alone)"
    )
    # The same program, arguments and process as use_system_allocator's restart.
    assert seen["path"] == sys.executable
    assert seen["args"] == [sys.executable, *seen["orig"][1:]]
    assert seen["malloc"] == "malloc"


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        (["/venv/bin/invoke-host", "serve"], {"PYTHONMALLOC": "pymalloc"}),  # a person's choice of allocator is kept
        (["/venv/bin/invoke-host", "serve"], {"PYTHONMALLOC": "malloc"}),  # the restarted process itself
        (["/venv/bin/invoke-host", "nodes"], {}),
        (["/venv/bin/invoke-host"], {}),
        (["/venv/bin/invoke-host", "--help", "serve"], {}),
        (["/venv/bin/invoke-host", "serve", "--help"], {}),
        (["/usr/bin/pytest", "serve"], {}),  # another program calling the entry point in-process
    ],
)
def test_the_program_leaves_every_other_command_line_to_the_cli(argv: list[str], environ: dict[str, str]) -> None:
    from invoke_host.launcher import restarts_first

    assert restarts_first(argv, environ) is False


def test_the_program_restarts_serve_and_worker_where_use_system_allocator_would() -> None:
    import invoke_host.memory
    from invoke_host.launcher import restarts_first

    expected = invoke_host.memory._MALLOC_TRIM is not None and sys.platform.startswith("linux")
    for command in ("serve", "worker"):
        assert restarts_first(["/venv/bin/invoke-host", command, "--port", "1"], {}) is expected


def test_the_program_runs_the_cli_when_it_does_not_restart(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONMALLOC": "malloc"}
    out = subprocess.run(
        [sys.executable, "-c", LAUNCHER_RESTART_POINT.replace('os.environ.pop("PYTHONMALLOC", None)', ""), "--help"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "serve" in out.stdout and "worker" in out.stdout and "packs" in out.stdout


def test_the_installed_program_is_the_launcher() -> None:
    import tomllib

    scripts = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["invoke-host"] == "invoke_host.launcher:main"
