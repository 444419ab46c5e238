"""The OpenAPI document as a contract for generated clients: stable component names, typed bodies, errors."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from litestar.testing import TestClient

from invoke_host.api.operation_ids import OPERATION_IDS
from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.host import build_host
from invoke_host.openapi_components import generate_components

# A pack whose classes share their names with the core's: a node class (ImageResizeInvocation, in the first-party
# image nodes), an output class (ImageOutput, in the SDK) and a field model (ColorField, in the image nodes), and with
# each other's (both packs are made from this text).
_PACK = """
from enum import Enum

from invoke_sdk import BaseInvocation, BaseInvocationOutput, InputField, OutputField, hookimpl
from invoke_sdk import invocation, invocation_output
from pydantic import BaseModel


class ColorField(BaseModel):
    shade: str = "{name}"


class Mode(str, Enum):
    {name} = "{name}"


@invocation_output("{name}_output")
class ImageOutput(BaseInvocationOutput):
    width: int = OutputField()


@invocation("{name}_resize")
class ImageResizeInvocation(BaseInvocation):
    color: ColorField = InputField(default_factory=ColorField)
    mode: Mode = InputField(default=Mode.{name})

    def invoke(self, context) -> ImageOutput:
        return ImageOutput(width=1)


@hookimpl
def register_invocations(register):
    register(ImageResizeInvocation)
"""


def _pack(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = ModuleType(f"{name}.nodes")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(textwrap.dedent(_PACK).format(name=name), f"<{name}>", "exec"), module.__dict__)
    return module


def test_installing_packs_that_collide_on_class_names_renames_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = build_host(HostConfig(root=tmp_path / "alone"), entry_points=True)
    before = generate_components(alone.registry).components
    assert {"Invocation.img_resize", "Output.image_output", "pack.invoke_image_nodes.ColorField"} <= set(before)

    packs = [(name, _pack(name, monkeypatch)) for name in ("pack_a", "pack_b")]
    both = build_host(HostConfig(root=tmp_path / "both"), packs, entry_points=True)
    assert not any(r.refused or r.error for r in both.registry.plugins)
    after = generate_components(both.registry).components

    # Every component of the core alone is still there, under the same name, with the same schema.
    assert {name: after[name] for name in before if not name.startswith("Any")} == {
        name: schema for name, schema in before.items() if not name.startswith("Any")
    }
    added = set(after) - set(before)
    assert added == {
        f"{kind}.{pack}{suffix}"
        for pack in ("pack_a", "pack_b")
        for kind, suffix in [("Invocation", "_resize"), ("Output", "_output"), ("pack", ".ColorField"),
                             ("pack", ".Mode")]
    }
    # Each pack's node refers to its own field models.
    node = after["Invocation.pack_b_resize"]
    assert node["properties"]["color"]["$ref"] == "#/components/schemas/pack.pack_b.ColorField"
    assert after["pack.pack_b.Mode"]["enum"] == ["pack_b"]
    mapping: dict[str, Any] = after["AnyInvocation"]["discriminator"]["mapping"]
    assert mapping["img_resize"] == "#/components/schemas/Invocation.img_resize"
    assert mapping["pack_a_resize"] == "#/components/schemas/Invocation.pack_a_resize"


def test_every_core_operation_has_a_short_id_from_the_table(tmp_path: Path) -> None:
    app = create_app(HostConfig(root=tmp_path), entry_points=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        doc = client.get("/schema/openapi.json").json()
    found = {f"{m.upper()} {p}": op["operationId"] for p, item in doc["paths"].items() for m, op in item.items()}
    assert found == dict(OPERATION_IDS)  # no stale row, no core operation left to Litestar's long ids
    assert all(re.fullmatch(r"[a-z][a-z0-9_]{2,30}", op) for op in found.values())
    assert len(set(found.values())) == len(found)
