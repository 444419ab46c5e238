"""Clients generated from our OpenAPI document work as they are: a typed TypeScript program compiles with
``tsc --strict`` (and a wrong one does not), and a generated Python client, made with no warnings, runs against a
live server. The generators come from ``scripts/client-tools`` (npm and PyPI, installed once into .client-tools/).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from PIL import Image

from invoke_host.app import create_app
from invoke_host.config import HostConfig
from tests.live_server import live_server
from tests.models.model_files import write_lora_kohya

REPO = Path(__file__).parent.parent
TOOLS = REPO / ".client-tools"
CLIENTS = Path(__file__).parent / "clients"
# The two non-JSON answers (the PNG and the WebP thumbnail) are bytes to the generated client: it knows only
# application/octet-stream for those, and says so with a warning per operation unless told.
PYTHON_CLIENT_CONFIG = (
    "content_type_overrides:\n  image/png: application/octet-stream\n  image/webp: application/octet-stream\n"
)
# The first test's setup installs the generators (npm and pip), then each test runs a generator and a compiler as
# child processes (each bounded at 300 s below): the suite's 120 s is for one Python test, not for this.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def tools() -> Path:
    subprocess.run([str(REPO / "scripts" / "client-tools")], check=True, timeout=600)
    return TOOLS


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = create_app(HostConfig(root=tmp_path_factory.mktemp("doc"), processor_enabled=False))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        text = client.get("/schema/openapi.json").text
    path = tmp_path_factory.mktemp("openapi") / "openapi.json"
    path.write_text(text)
    return path


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def _tsc(tools: Path, folder: Path, program: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(CLIENTS / program, folder / program)
    flags = ["--strict", "--noEmit", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler",
             "--lib", "es2022,dom"]
    return _run([str(tools / "node_modules" / ".bin" / "tsc"), *flags, program], folder)


def test_a_typed_typescript_program_compiles_and_a_wrong_one_does_not(
    tools: Path, document: Path, tmp_path: Path
) -> None:
    # --default-non-nullable false: a field with a default is optional in what a client sends (see FACTS.md).
    generated = _run([str(tools / "node_modules" / ".bin" / "openapi-typescript"), str(document), "-o", "schema.d.ts",
                      "--default-non-nullable", "false"], tmp_path)
    assert generated.returncode == 0, generated.stderr
    typed = _tsc(tools, tmp_path, "typed.ts")
    assert typed.returncode == 0, typed.stdout
    wrong = _tsc(tools, tmp_path, "wrong.ts")
    errors = [line for line in wrong.stdout.splitlines() if ": error TS" in line]
    assert wrong.returncode != 0 and len(errors) == 3, wrong.stdout
    assert "'\"no_such_node\"' is not assignable" in errors[0]
    assert "Type 'string' is not assignable to type 'number'" in errors[1]
    assert "Property 'image' does not exist on type" in errors[2] and "integer_output" in errors[2]


def test_a_generated_python_client_has_no_warnings_and_works_against_a_live_server(
    tools: Path, document: Path, tmp_path: Path
) -> None:
    config = tmp_path / "client.yaml"
    config.write_text(PYTHON_CLIENT_CONFIG)
    venv_bin = tools / "venv" / "bin"
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}"}  # it formats with its own ruff
    generated = _run([str(venv_bin / "openapi-python-client"), "generate", "--path", str(document), "--output-path",
                      str(tmp_path / "invoke_host_client"), "--meta", "none", "--config", str(config)], tmp_path, env)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "warning" not in (generated.stdout + generated.stderr).lower(), generated.stdout + generated.stderr

    image = tmp_path / "cat.png"
    buffer = io.BytesIO()
    Image.new("RGB", (40, 24), "orange").save(buffer, format="PNG")
    image.write_bytes(buffer.getvalue())
    lora = write_lora_kohya(tmp_path / "style.safetensors", "sdxl")
    app = create_app(HostConfig(root=tmp_path / "root"))
    with live_server(app) as server:
        ran = _run([str(venv_bin / "python"), str(CLIENTS / "use_python_client.py"), str(tmp_path), server.url,
                    str(image), str(lora)], tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    seen: dict[str, Any] = json.loads(ran.stdout.strip().splitlines()[-1])
    assert seen == {
        "status": "completed",
        "sum": 5,
        # The 422 parsed as the one error body, the problem's node and field in it.
        "refused": [422, "the graph is invalid", "ErrorResponseExtraType1", [["n", "a"]]],
        "image": [True, 40, 24],
        "install": ["completed", "Client Style", "from the generated client", "lora"],
        "config_class": "ModelConfigLoraLycoris",  # the union member the client parsed it into
    }
