"""The registry freezes once, after every plugin registered; validation only uses the frozen unions."""

import json
import tomllib
from enum import Enum
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import pytest
from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    InputField,
    InvocationContext,
    OutputField,
    hookimpl,
    invocation,
    invocation_output,
)
from invoke_sdk.models import ModelConfigBase, ModelType
from litestar.serialization import encode_json
from litestar.testing import TestClient
from pydantic import ConfigDict, ValidationError
from pydantic.json_schema import GenerateJsonSchema

import invoke_host.app
import invoke_host.registry
from invoke_host.app import create_app
from invoke_host.config import HostConfig
from invoke_host.host import build_host
from invoke_host.openapi_bodies import type_bodies
from invoke_host.openapi_components import generate_components, registry_components


@invocation_output("third_output")
class ThirdOutput(BaseInvocationOutput):
    value: int = OutputField()


def _plugin(*classes: type[BaseInvocation]) -> SimpleNamespace:
    @hookimpl
    def register_invocations(register):  # type: ignore[no-untyped-def]
        for cls in classes:
            register(cls)

    return SimpleNamespace(register_invocations=register_invocations)


def test_node_defined_after_the_host_modules_were_imported_is_validated() -> None:
    # InvokeAI once built its node union when its graph module was imported, so a node class
    # defined later ("ThirdInvocation") failed validation. Here the union is built at the freeze.
    assert invoke_host.app.create_app is create_app

    @invocation("third", title="Third")
    class ThirdInvocation(BaseInvocation):
        count: int = InputField(default=1, gt=0)

        def invoke(self, context: InvocationContext) -> ThirdOutput:
            return ThirdOutput(value=self.count)

    host = build_host(plugins=[("third_pack", _plugin(ThirdInvocation))], entry_points=False)
    node = host.registry.invocation_adapter.validate_python({"id": "x", "type": "third", "count": 2})
    assert isinstance(node, ThirdInvocation) and node.count == 2
    with pytest.raises(ValidationError):
        host.registry.invocation_adapter.validate_python({"id": "x", "type": "third", "count": 0})

    # A host built without the plugin knows nothing of it: there is no global registry.
    other = build_host(plugins=[], entry_points=False)
    assert "third" not in other.registry.invocations


def test_union_is_discriminated_on_type_and_sorted() -> None:
    @invocation_output("s_output")
    class SOutput(BaseInvocationOutput):
        value: str = OutputField()

    made = []
    for type_id in ["zeta", "alpha", "mid"]:
        @invocation(type_id)
        class Node(BaseInvocation):
            text: str = InputField(default="")

            def invoke(self, context: InvocationContext) -> SOutput:
                return SOutput(value=self.text)

        made.append(Node)

    host = build_host(plugins=[("p", _plugin(*made))], entry_points=False)
    assert list(host.registry.invocations) == ["alpha", "mid", "zeta"]
    with pytest.raises(ValidationError) as exc:
        host.registry.invocation_adapter.validate_python({"id": "x", "type": "nope"})
    assert "does not match any of the expected tags" in str(exc.value)


def test_openapi_document_has_every_node_with_a_discriminator_mapping() -> None:
    @invocation("fourth")
    class FourthInvocation(BaseInvocation):
        def invoke(self, context: InvocationContext) -> ThirdOutput:
            return ThirdOutput(value=4)

    app = create_app(plugins=[("p", _plugin(FourthInvocation))], entry_points=False)
    with TestClient(app) as client:
        doc = client.get("/schema/openapi.json").json()
    schemas = doc["components"]["schemas"]
    mapping = schemas["AnyInvocation"]["discriminator"]["mapping"]
    assert set(mapping) == {"fourth"}
    # Named from the type ids, not the class names (tests/test_openapi_contract.py says why).
    assert mapping["fourth"] == "#/components/schemas/Invocation.fourth"
    assert schemas["Invocation.fourth"]["required"][0] == "type"
    assert schemas["AnyInvocationOutput"]["discriminator"]["mapping"] == {
        "third_output": "#/components/schemas/Output.third_output"
    }


def test_a_node_whose_default_factory_exits_is_refused_and_its_neighbours_load() -> None:
    def leave() -> int:
        raise SystemExit("a default that ends the process")

    @invocation("exits_on_default", title="Exits")
    class ExitsOnDefault(BaseInvocation):
        count: int = InputField(default_factory=leave)

        def invoke(self, context: InvocationContext) -> ThirdOutput:
            return ThirdOutput(value=self.count)

    @invocation("fine_neighbour", title="Fine")
    class FineNeighbour(BaseInvocation):
        def invoke(self, context: InvocationContext) -> ThirdOutput:
            return ThirdOutput(value=1)

    host = build_host(plugins=[("p", _plugin(ExitsOnDefault, FineNeighbour))], entry_points=False)
    [record] = host.registry.plugins
    assert record.status == "loaded" and record.registered["invocations"] == ["fine_neighbour"]
    [refusal] = record.refused
    assert refusal.startswith("node class <class ")
    assert refusal.endswith(
        "from plugin 'p' is refused: checking it raised SystemExit: a default that ends the process"
    )


def test_a_hook_raising_any_base_exception_but_ctrl_c_is_that_plugins_failure() -> None:
    class Stop(BaseException):
        pass

    @hookimpl
    def register_invocations(register):  # type: ignore[no-untyped-def]
        raise Stop("not an Exception")

    @hookimpl
    def register_routes(register):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    host = build_host(plugins=[("stops", SimpleNamespace(register_invocations=register_invocations))],
                      entry_points=False)
    assert host.registry.plugins[0].status == "failed"
    assert host.registry.plugins[0].error == "registration hook: Stop: not an Exception"
    with pytest.raises(KeyboardInterrupt):
        build_host(plugins=[("ctrl_c", SimpleNamespace(register_routes=register_routes))], entry_points=False)


def test_an_output_class_shared_by_nodes_is_judged_for_each_until_it_is_registered() -> None:
    # Collection checks a registered output class once; one that failed is judged again for the next node.
    @invocation_output("shared_bad_output")
    class SharedBadOutput(BaseInvocationOutput):
        value: int = OutputField(default="not a number")

    @invocation_output("shared_good_output")
    class SharedGoodOutput(BaseInvocationOutput):
        value: int = OutputField(default=0)

    made = []
    for type_id, output in [("bad_a", SharedBadOutput), ("bad_b", SharedBadOutput),
                            ("good_a", SharedGoodOutput), ("good_b", SharedGoodOutput)]:
        def invoke(self: BaseInvocation, context: InvocationContext, _output: type = output) -> BaseInvocationOutput:
            return _output()

        invoke.__annotations__["return"] = output
        made.append(invocation(type_id)(type(f"Node_{type_id}", (BaseInvocation,), {"invoke": invoke})))

    host = build_host(plugins=[("p", _plugin(*made))], entry_points=False)
    [record] = host.registry.plugins
    assert record.registered == {"invocations": ["good_a", "good_b"], "outputs": ["shared_good_output"]}
    assert len(record.refused) == 2
    for refusal in record.refused:
        assert "SharedBadOutput has a default that does not fit its field (value: " in refusal
    assert host.registry.output_of("good_b") is SharedGoodOutput


class Colour(Enum):
    RED = "red"
    BLUE = "blue"


@invocation_output("many_defaults_output")
class ManyDefaultsOutput(BaseInvocationOutput):
    value: float = OutputField(default=-0.0)


@invocation("many_defaults")
class ManyDefaults(BaseInvocation):
    zero: int = InputField(default=0)
    minus: int = InputField(default=-1)
    negative_zero: float = InputField(default=-0.0)
    positive_zero: float = InputField(default=0.0)
    infinite: float = InputField(default=float("inf"))
    huge: float = InputField(default=1e300)
    empty: str = InputField(default="")
    flag: bool = InputField(default=True)
    nothing: int | None = InputField(default=None)
    words: list[str] = InputField(default=["a", "b"])
    colour: Colour = InputField(default=Colour.BLUE)

    def invoke(self, context: InvocationContext) -> ManyDefaultsOutput:
        return ManyDefaultsOutput(value=0.0)


@invocation("other_config_defaults")
class OtherConfigDefaults(BaseInvocation):
    """The same scalar defaults under another model config (a part of the cache key)."""

    model_config = ConfigDict(ser_json_inf_nan="strings", str_to_upper=True)

    infinite: float = InputField(default=float("inf"))
    zero: int = InputField(default=0)

    def invoke(self, context: InvocationContext) -> ManyDefaultsOutput:
        return ManyDefaultsOutput(value=0.0)


def test_the_openapi_document_has_the_schemas_pydantics_own_generator_writes(tmp_path: Path) -> None:
    # The components are generated with one adapter per scalar type and config for defaults (SharedAdaptersJsonSchema);
    # the document served must be exactly what pydantic's plain generator gives, every first-party model included.
    names = []
    for pyproject in sorted((Path(__file__).parent.parent / "plugins").glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        names += list(project.get("entry-points", {}).get("invoke_host.plugins", {}))  # invokeai-compat has none
    host = build_host(
        HostConfig(root=tmp_path, plugins_allow=[*names, "defaults"]),
        [("defaults", _plugin(ManyDefaults, OtherConfigDefaults))],
        entry_points=True,
    )
    assert len(host.registry.invocations) > 20 and not any(r.refused for r in host.registry.plugins)
    plain = generate_components(host.registry, GenerateJsonSchema)
    assert plain.refs == registry_components(host.registry).refs
    # Compared as JSON text: key order and -0.0 against 0.0 count.
    assert json.dumps(registry_components(host.registry).components) == json.dumps(plain.components)

    with TestClient(create_app(host=host)) as client:
        served = client.get("/schema/openapi.json").json()["components"]["schemas"]
    # Through the server's own JSON encoder (it writes an infinite default as null), with the fields the document
    # types beyond the models (invoke_host/openapi_bodies.py) typed the same way.
    expected = json.loads(encode_json(plain.components))
    type_bodies(expected, {})
    assert json.dumps({name: served[name] for name in expected}) == json.dumps(expected)
    node = served["Invocation.many_defaults"]
    # "version" is the graph's reserved key (docs/engine.md): a property with no default.
    defaults = {k: v.get("default") for k, v in node["properties"].items() if k not in ("infinite", "version")}
    assert defaults == {
        "id": "node", "is_intermediate": False, "use_cache": True, "type": "many_defaults", "zero": 0, "minus": -1,
        "negative_zero": -0.0, "positive_zero": 0.0, "huge": 1e300, "empty": "", "flag": True, "nothing": None,
        "words": ["a", "b"], "colour": "blue",
    }
    assert json.dumps(node["properties"]["negative_zero"]["default"]) == "-0.0"
    assert served["Output.many_defaults_output"]["properties"]["value"]["default"] == 0.0


class Opaque:
    """A type pydantic has no schema for."""


class OpaqueConfig(ModelConfigBase):
    # Deferred, so the class can be defined and the broken schema is found only when the registry builds it.
    model_config = ConfigDict(defer_build=True)

    type: Literal[ModelType.VAE]
    format: Literal["opaque"]
    thing: Opaque


class PlainConfig(ModelConfigBase):
    type: Literal[ModelType.VAE]
    format: Literal["plain"]


class NotTaggedConfig(ModelConfigBase):
    type: Literal[ModelType.VAE]
    format: str


class LaterTypedConfig(ModelConfigBase):
    # The annotation names a class defined below: pydantic cannot resolve it when it builds the class, so the tag
    # comes from the class's type hints, resolved when it is asked for.
    model_config = ConfigDict(defer_build=True)

    type: Literal[ModelType.VAE]
    format: "LaterFormat"


LaterFormat = Literal["later"]


def test_a_config_tag_is_read_from_its_literal_type_and_format() -> None:
    assert PlainConfig.tag() == "vae.plain"
    assert LaterTypedConfig.tag() == "vae.later"
    with pytest.raises(TypeError, match=r"NotTaggedConfig.format must be annotated as Literal\[<one value>\]"):
        NotTaggedConfig.tag()


def test_a_model_config_whose_schema_does_not_build_is_refused_and_its_neighbour_registers() -> None:
    @hookimpl
    def register_model_configs(register):  # type: ignore[no-untyped-def]
        register(OpaqueConfig)
        register(PlainConfig)

    host = build_host(plugins=[("configs", SimpleNamespace(register_model_configs=register_model_configs))],
                      entry_points=False)
    [record] = host.registry.plugins
    assert record.registered == {"model_configs": ["vae.plain"]}
    # pydantic's message has several lines; the record keeps each as a line.
    assert record.refused[0].startswith(
        f"model config {__name__}.OpaqueConfig is refused: Unable to generate pydantic-core schema for "
    )
    adapter = host.registry.model_config_adapter
    assert adapter is not None
    record_fields = {"key": "k", "hash": "blake3:00", "name": "n", "base": "any", "path": "p", "source": "s",
                     "source_type": "path"}
    config = adapter.validate_python({**record_fields, "type": "vae", "format": "plain"})
    assert isinstance(config, PlainConfig)
