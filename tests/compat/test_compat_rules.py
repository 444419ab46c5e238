"""One test per rule of the InvokeAI compatibility layer (invokeai-compat), each without a server."""

from __future__ import annotations

import ast
import importlib
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Literal

import invokeai.invocation_api as api
import pytest
from click.testing import CliRunner
from invoke_sdk.outputs import ImageOutput
from invoke_sdk.testing import FakeContext, run_node
from invokeai.app.services.images.images_common import ImageDTO
from PIL import Image
from pydantic import ValidationError

from invoke_host.cli import main
from invoke_host.packs_cli import wrap_pack

INVOKEAI_API = Path(__file__).parent / "invokeai_invocation_api_6_14_names.txt"


def test_every_name_invocation_api_6_14_exports_is_importable() -> None:
    names = INVOKEAI_API.read_text().split()
    assert len(names) == 132
    assert sorted(api.__all__) == sorted(names)
    missing = [name for name in names if not hasattr(api, name)]
    assert missing == []


@pytest.mark.parametrize("module, names", [
    ("invokeai.app.invocations.baseinvocation", ["BaseInvocation", "invocation", "InputField", "InvocationContext",
                                                 "WithMetadata", "FieldDescriptions", "UIComponent"]),
    ("invokeai.app.invocations.fields", ["ImageField", "InputField", "WithBoard", "FluxConditioningField"]),
    ("invokeai.app.invocations.primitives", ["ImageOutput", "ColorField", "StringOutput", "BoardField"]),
    ("invokeai.app.services.image_records.image_records_common", ["ImageCategory", "ResourceOrigin"]),
    ("invokeai.app.models.image", ["ImageCategory", "ResourceOrigin"]),
    ("invokeai.backend.util.logging", ["InvokeAILogger"]),
    ("invokeai.backend.util.devices", ["choose_torch_device", "TorchDevice", "choose_precision"]),
    ("invokeai.app.services.config", ["InvokeAIAppConfig", "get_config"]),
    ("invokeai.app.services.config.config_default", ["get_config"]),
    ("invokeai.app.invocations.image", ["PIL_RESAMPLING_MAP", "PIL_RESAMPLING_MODES", "ImageOutput"]),
])
def test_the_old_import_paths_packs_use_are_importable(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    assert [n for n in names if not hasattr(imported, n)] == []


def test_importing_the_api_does_not_import_torch() -> None:
    code = "import sys, invokeai.invocation_api; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@api.invocation("compat_rule_node", title="Rule", version="2.1.0", classification=api.Classification.Prototype,
                bottleneck=api.Bottleneck.Network)
class RuleNode(api.BaseInvocation, api.WithMetadata, api.WithBoard):
    """A node using the arguments InvokeAI's decorators and fields take."""

    text: str = api.InputField(default=None, ui_component=api.UIComponent.Textarea, ui_order=2)
    count: int = api.InputField(default=3, ge=1, le=9, strict=True, ui_type=api.UIType.Any)
    kind: Literal["a", "b"] = api.InputField(default="a", ui_choice_labels={"a": "Alpha", "b": "Beta"})
    model: api.ModelIdentifierField = api.InputField(
        default=None, ui_model_base=api.BaseModelType.StableDiffusion1, ui_model_type=api.ModelType.Main
    )

    def invoke(self, context: api.InvocationContext) -> api.StringOutput:
        return api.StringOutput(value=f"{self.text}:{self.count}:{type(context).__name__}")


def test_default_none_on_a_non_optional_type_makes_the_input_optional() -> None:
    RuleNode.model_rebuild()
    assert RuleNode(text=None).text is None
    schema = RuleNode.model_json_schema()
    assert {"type": "null"} in schema["properties"]["text"]["anyOf"]
    assert "text" not in schema.get("required", [])


def test_ui_arguments_classification_and_bottleneck_are_kept_in_the_schema() -> None:
    schema = RuleNode.model_json_schema()
    props = schema["properties"]
    assert props["text"]["ui_component"] == "textarea" and props["text"]["ui_order"] == 2
    assert props["count"]["ui_type"] == "AnyField"
    assert props["kind"]["ui_choice_labels"] == {"a": "Alpha", "b": "Beta"}
    assert props["model"]["ui_model_base"] == "sd-1" and props["model"]["ui_model_type"] == "main"
    assert (schema["classification"], schema["bottleneck"], schema["node_pack"]) == ("prototype", "network", "tests")
    assert "type" in schema["required"]


def test_strict_reaches_pydantic() -> None:
    with pytest.raises(ValidationError):
        RuleNode(count="3")
    assert RuleNode(count=4).count == 4


def test_version_defaults_to_1_0_0_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "invokeai_compat"):
        @api.invocation("compat_rule_unversioned")
        class Unversioned(api.BaseInvocation):
            def invoke(self, context: api.InvocationContext) -> api.StringOutput:
                return api.StringOutput(value="")

    info = Unversioned.invocation_info()
    assert info is not None and info.version == "1.0.0"
    assert 'No version specified for node "compat_rule_unversioned", using "1.0.0"' in caplog.text
    assert Unversioned.get_type() == "compat_rule_unversioned"


def test_a_bad_version_is_invokeais_invalid_version_error() -> None:
    from invokeai.app.invocations.baseinvocation import InvalidVersionError

    message = 'Invalid version string for node "compat_rule_bad": "1.0"'
    with pytest.raises(InvalidVersionError, match=re.escape(message)):
        @api.invocation("compat_rule_bad", version="1.0")
        class Bad(api.BaseInvocation):
            def invoke(self, context: api.InvocationContext) -> api.StringOutput:
                return api.StringOutput(value="")


def test_mixins_add_metadata_and_board_inputs_of_kind_internal() -> None:
    props = RuleNode.model_json_schema()["properties"]
    assert props["metadata"]["invokeai_field_kind"] == api.FieldKind.Internal.value == "internal"
    assert props["metadata"]["input"] == "connection"
    assert props["board"]["invokeai_field_kind"] == "internal"
    assert api.WithWorkflow.workflow is None


def test_invokeais_enum_spellings() -> None:
    assert api.ImageCategory.GENERAL.value == "general" and api.ImageCategory.MASK == "mask"
    assert api.SubModelType.UNet.value == "unet" and api.BaseModelType.Flux.value == "flux"


def test_color_field_tuple() -> None:
    assert api.ColorField(r=1, g=2, b=3, a=4).tuple() == (1, 2, 3, 4)
    with pytest.raises(ValidationError):
        api.ColorField(r=256, g=0, b=0, a=0)


def test_invoke_receives_an_invokeai_shaped_context() -> None:
    out = run_node(RuleNode(text="hi"))
    assert out.value == "hi:3:InvokeAIContext"


def _saving_node(board_id: str | None) -> type[api.BaseInvocation]:
    @api.invocation(f"compat_rule_save_{board_id or 'none'}", version="1.0.0")
    class Saves(api.BaseInvocation, api.WithMetadata):
        def invoke(self, context: api.InvocationContext) -> api.ImageOutput:
            dto = context.images.save(image=Image.new("RGB", (5, 7)), board_id=board_id,
                                      image_category=api.ImageCategory.MASK)
            assert isinstance(dto, ImageDTO)
            again = context.images.get_dto(dto.image_name)
            assert (again.width, again.height, again.board_id) == (5, 7, None)
            assert context.images.get_metadata(dto.image_name) == self.metadata
            return api.ImageOutput.build(dto)

    return Saves


def test_images_save_returns_a_dto_and_keeps_the_nodes_metadata() -> None:
    context = FakeContext()
    node = _saving_node(None)(metadata=api.MetadataField({"seed": 5}))
    out = run_node(node, context)
    assert isinstance(out, ImageOutput) and (out.width, out.height) == (5, 7)
    assert context.images.metadata[out.image.image_name] == {"seed": 5}


def test_a_board_id_is_accepted_and_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    context = FakeContext()
    with caplog.at_level(logging.WARNING, "invokeai_compat"):
        out = run_node(_saving_node("board-7")(), context)
    assert out.image.image_name in context.images.saved
    assert "Board 'board-7' ignored: Invoke Host keeps no boards" in caplog.text


def test_config_get_util_sd_step_callback_and_models_search() -> None:
    @api.invocation("compat_rule_context", version="1.0.0")
    class UsesContext(api.BaseInvocation):
        def invoke(self, context: api.InvocationContext) -> api.StringOutput:
            config = context.config.get()
            context.util.sd_step_callback(api.PipelineIntermediateState(
                step=1, order=1, total_steps=4, timestep=500, latents=None), api.BaseModelType.StableDiffusion1)
            found = context.models.search_by_attrs(name="m", base=api.BaseModelType.StableDiffusion1)
            return api.StringOutput(value=f"{config.root_path.name}|{[m.key for m in found]}")

    class Config:
        def __init__(self, key: str, name: str, base: str) -> None:
            self.key, self.name, self.base = key, name, base

    context = FakeContext(config={"root": "/data/my-root"})
    context.models.models = {"k1": Config("k1", "m", "sd-1"), "k2": Config("k2", "m", "sdxl")}
    assert run_node(UsesContext(), context).value == "my-root|['k1']"
    [call] = context.util.progress
    assert (call.message, call.percentage) == ("Denoising step 2 of 4", 0.5)


def test_what_needs_invokeais_model_stack_says_so_when_used() -> None:
    from invokeai_compat import NotSupportedHere

    message = "ModelConfigFactory.make_config is not supported on Invoke Host"
    with pytest.raises(NotSupportedHere, match=re.escape(message)):
        api.ModelConfigFactory.make_config({})
    with pytest.raises(NotSupportedHere, match="xyz_from_srgb is not supported"):
        api.xyz_from_srgb(None)


def test_srgb_and_oklab_conversions_round_trip() -> None:
    torch = pytest.importorskip("torch")
    image = torch.tensor([[[0.2, 0.9]], [[0.5, 0.1]], [[0.7, 0.0]]])
    back = api.srgb_from_linear_srgb(api.linear_srgb_from_oklab(api.oklab_from_linear_srgb(
        api.linear_srgb_from_srgb(image))))
    assert torch.allclose(back, image, atol=1e-4)
    white = api.oklab_from_srgb(torch.ones(3, 1, 1))
    assert torch.allclose(white.flatten(), torch.tensor([1.0, 0.0, 0.0]), atol=1e-4)


def test_image_output_build_takes_anything_with_a_name_and_a_size() -> None:
    class Named:
        name, width, height = "x.png", 3, 4

    assert ImageOutput.build(Named()).model_dump() == {
        "type": "image_output", "image": {"image_name": "x.png"}, "width": 3, "height": 4}
    with pytest.raises(TypeError, match=re.escape("needs the size of image 'x.png'")):
        ImageOutput.build(api.ImageField(image_name="x.png"))


def test_wrap_reads_requirements_and_writes_an_entry_point(tmp_path: Path) -> None:
    pack = tmp_path / "My Pack-2"
    pack.mkdir()
    (pack / "__init__.py").write_text("")
    (pack / "requirements.txt").write_text("# deps\nnumpy>=1.26  # arrays\n-r other.txt\ninvokeai\n\nopencv-python\n")
    (pack / "fonts").mkdir()
    (pack / "fonts" / "a.ttf").write_bytes(b"font")
    wrapped = wrap_pack(pack, tmp_path / "out")
    assert (wrapped.package, wrapped.distribution) == ("My_Pack_2", "invokeai-pack-my-pack-2")
    assert wrapped.requirements == ("numpy>=1.26", "opencv-python")
    pyproject = (wrapped.project / "pyproject.toml").read_text()
    assert 'dependencies = ["invokeai-compat>=0.1,<0.2", "numpy>=1.26", "opencv-python"]' in pyproject
    assert 'My_Pack_2 = "My_Pack_2._invoke_host_plugin"' in pyproject
    assert (wrapped.project / "My_Pack_2" / "fonts" / "a.ttf").read_bytes() == b"font"
    ast.parse((wrapped.project / "My_Pack_2" / "_invoke_host_plugin.py").read_text())


def test_wrap_refuses_a_folder_without_init_saying_why(tmp_path: Path) -> None:
    (tmp_path / "loose").mkdir()
    result = CliRunner().invoke(main, ["packs", "wrap", str(tmp_path / "loose"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "has no __init__.py: InvokeAI loads a pack by importing its folder's __init__.py" in result.output


def test_the_wrapped_pack_installs_with_its_entry_point(wrapped_projects: Path, compat_site: Path) -> None:
    [dist_info] = compat_site.glob("invokeai_pack_retro_tools-*.dist-info")
    entry_points = (dist_info / "entry_points.txt").read_text()
    assert "[invoke_host.plugins]\nretro_tools = retro_tools._invoke_host_plugin" in entry_points
    requires = (dist_info / "METADATA").read_text()
    assert "Requires-Dist: invokeai-compat<0.2,>=0.1" in requires and "Requires-Dist: pillow>=10.0" in requires


def test_a_reimported_pack_registers_each_node_once() -> None:
    from invokeai_compat.declared import declared_in, remember

    before = declared_in("tests.compat.test_compat_rules")
    remember(RuleNode)  # what a second import of the module does
    after = declared_in("tests.compat.test_compat_rules")
    assert len(after) == len(before) and set(after) == set(before)




def test_invokeai_3_context_services_images_are_emulated() -> None:
    from invokeai.app.invocations.baseinvocation import BaseInvocation, InvocationContext, invocation
    from invokeai.app.services.image_records.image_records_common import ResourceOrigin
    from invokeai_compat import NotSupportedHere

    @invocation("compat_rule_legacy", version="1.0.0")
    class Legacy(BaseInvocation):
        def invoke(self, context: InvocationContext) -> api.ImageOutput:
            dto = context.services.images.create(
                image=Image.new("L", (2, 3)), image_origin=ResourceOrigin.INTERNAL,
                image_category=api.ImageCategory.GENERAL, node_id=self.id,
                session_id=context.graph_execution_state_id, is_intermediate=self.is_intermediate,
            )
            assert context.services.images.get_pil_image(dto.image_name).size == (2, 3)
            with pytest.raises(NotSupportedHere, match=re.escape("context.services.latents (InvokeAI 3.x)")):
                context.services.latents.get("x")
            return api.ImageOutput(image=api.ImageField(image_name=dto.image_name), width=dto.width,
                                   height=dto.height)

    out = run_node(Legacy())
    assert (out.width, out.height) == (2, 3)


def test_models_download_and_load_map_invokeais_calls_onto_the_sdks(tmp_path: Path) -> None:
    """download_and_cache_model returns the SDK's path; load_remote_model / load_local_model return a
    LoadedModelWithoutConfig over the SDK's handle, with InvokeAI's default loader for a safetensors file."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    weights = tmp_path / "annotator.safetensors"
    save_file({"w": torch.ones(2, 3)}, str(weights))
    url = "https://example.invalid/annotator.safetensors"

    @api.invocation("rule_remote_model", title="Remote model", version="1.0.0")
    class RemoteModelNode(api.BaseInvocation):
        def invoke(self, context: api.InvocationContext) -> api.StringOutput:
            path = context.models.download_and_cache_model(url)
            with context.models.load_remote_model(url) as model:  # InvokeAI's default loader
                shape = tuple(model["w"].shape)
            with context.models.load_local_model(path, lambda p: p.stat().st_size).model_on_device() as (sd, size):
                assert sd is None
            return api.StringOutput(value=f"{path.name}|{shape}|{size}")

    context = FakeContext()
    context.models.downloads[url] = weights
    assert run_node(RemoteModelNode(), context).value == f"annotator.safetensors|(2, 3)|{weights.stat().st_size}"
    from invokeai_compat import NotSupportedHere
    from invokeai_compat.context import default_loader

    with pytest.raises(NotSupportedHere, match="pass a loader function"):
        default_loader(tmp_path)


@api.invocation("compat_flux_prompt", title="FLUX prompt (pack)", version="1.0.0")
class PackFluxPrompt(api.BaseInvocation):
    """An InvokeAI pack's FLUX node: it takes a FLUX transformer and gives a FLUX conditioning."""

    transformer: api.TransformerField = api.InputField(input=api.Input.Connection)

    def invoke(self, context: api.InvocationContext) -> api.FluxConditioningOutput:
        assert [lora.weight for lora in self.transformer.loras] == []
        return api.FluxConditioningOutput.build("pack-conditioning")


def test_a_packs_flux_node_registers_and_connects_beside_the_hosts_flux_nodes() -> None:
    import types

    import invoke_diffusers_nodes.plugin as diffusers_nodes
    from invoke_sdk import hookimpl
    from invoke_sdk.flux_fields import FluxConditioningOutput, TransformerField

    from invoke_host.graph import validate_graph
    from invoke_host.host import build_host

    pack = types.ModuleType("flux_pack")
    pack.register_invocations = hookimpl(lambda register: register(PackFluxPrompt))  # type: ignore[attr-defined]
    host = build_host(plugins=[("diffusers_nodes", diffusers_nodes), ("flux_pack", pack)], entry_points=False)
    refused = [msg for r in host.plugins.records for msg in r.refused]
    assert refused == [] and "compat_flux_prompt" in host.registry.invocations
    assert host.registry.outputs["flux_conditioning_output"].value is FluxConditioningOutput
    # One class per type id: the pack's output is the host's, and so is the transformer it takes.
    assert api.FluxConditioningOutput is FluxConditioningOutput and api.TransformerField is TransformerField
    model = {"key": "flux-model"}
    graph = {
        "nodes": {"model": {"id": "model", "type": "flux_model_loader", "model": model},
                  "pack": {"id": "pack", "type": "compat_flux_prompt"},
                  "denoise": {"id": "denoise", "type": "flux_denoise", "width": 64, "height": 64}},
        "edges": [
            {"source": {"node_id": "model", "field": "transformer"}, "destination": {"node_id": "pack",
                                                                                     "field": "transformer"}},
            {"source": {"node_id": "model", "field": "transformer"}, "destination": {"node_id": "denoise",
                                                                                     "field": "transformer"}},
            {"source": {"node_id": "pack", "field": "conditioning"},
             "destination": {"node_id": "denoise", "field": "positive_text_conditioning"}},
        ],
    }
    checked = validate_graph(host.registry, graph)
    assert checked.errors == []
