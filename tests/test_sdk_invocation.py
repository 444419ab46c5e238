"""What the SDK's decorators and fields promise a node author."""

from typing import Any, Literal

import pytest
from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    Input,
    InputField,
    InvocationContext,
    OutputField,
    invocation,
    invocation_output,
)
from invoke_sdk.fields import field_extra
from pydantic import Field
from pydantic.fields import FieldInfo


@invocation_output("sdk_test_output")
class SdkOutput(BaseInvocationOutput):
    value: int = OutputField(description="The value")


@invocation("sdk_test_node", title="SDK test", tags=["a", "b"], category="tests", version="2.1.0", use_cache=False)
class SdkNode(BaseInvocation):
    """Doubles a number."""

    number: int = InputField(description="A number", ge=0)
    wired: int = InputField(default=0, input=Input.Connection)

    def invoke(self, context: InvocationContext) -> SdkOutput:
        return SdkOutput(value=self.number * 2)


def test_decorator_records_metadata_and_adds_a_required_type_tag() -> None:
    info = SdkNode.invocation_info()
    assert info is not None
    assert (info.type, info.title, info.tags, info.category, info.version) == (
        "sdk_test_node", "SDK test", ("a", "b"), "tests", "2.1.0"
    )
    assert info.description == "Doubles a number."
    schema = SdkNode.model_json_schema()
    assert schema["properties"]["type"]["const"] == "sdk_test_node"
    assert "type" in schema["required"]
    assert SdkOutput.model_json_schema()["required"][0] == "type"
    assert SdkNode.__name__ == "SdkNode" and SdkNode.__module__ == __name__


def test_use_cache_false_becomes_the_node_default() -> None:
    assert SdkNode(number=1).use_cache is False


def test_required_input_may_be_missing_until_an_edge_fills_it() -> None:
    node = SdkNode(id="n")
    assert node.number is None
    assert field_extra(SdkNode.model_fields["number"])["orig_required"] is True
    assert field_extra(SdkNode.model_fields["wired"])["input"] == "connection"
    assert SdkNode.input_field_names() == ["is_intermediate", "use_cache", "number", "wired"]


def test_constraints_are_enforced_on_given_values() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        SdkNode(number=-1)


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        SdkNode(number=1, nubmer=2)


@pytest.mark.parametrize("bad", ["has space", "", "slash/id"])
def test_bad_type_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid invocation type id"):
        invocation(bad)


def test_bad_version_is_refused() -> None:
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR\.PATCH"):
        invocation("ok_id", version="1.0")


def test_decorating_something_else_is_refused() -> None:
    with pytest.raises(TypeError, match="BaseInvocation subclass"):
        invocation("x")(SdkOutput)
    with pytest.raises(TypeError, match="BaseInvocationOutput subclass"):
        invocation_output("y")(SdkNode)


def _field_state(info: Any) -> dict[str, Any]:
    # Metadata by repr: pydantic's pattern holder has no __eq__.
    return {name: getattr(info, name, None) for name in FieldInfo.__slots__} | {"metadata": repr(info.metadata)}


@pytest.mark.parametrize(
    ("ours", "pydantics"),
    [
        (lambda: InputField(), lambda: Field(default=None, json_schema_extra={
            "field_kind": "input", "input": "any", "orig_required": True})),
        (lambda: InputField(default=2, ge=0, lt=9.5, description="d", title="T", ui_order=3), lambda: Field(
            default=2, ge=0, lt=9.5, description="d", title="T",
            json_schema_extra={"field_kind": "input", "input": "any", "orig_required": False, "ui_order": 3})),
        (lambda: InputField(default_factory=list, min_length=1, max_length=4, input=Input.Connection, ui_hidden=True),
         lambda: Field(default_factory=list, min_length=1, max_length=4, json_schema_extra={
             "field_kind": "input", "input": "connection", "orig_required": False, "ui_hidden": True})),
        (lambda: InputField(default="a", pattern="^a+$", multiple_of=None, gt=None, le=3),
         lambda: Field(default="a", pattern="^a+$", le=3, json_schema_extra={
             "field_kind": "input", "input": "any", "orig_required": False})),
        (lambda: OutputField(),
         lambda: Field(title=None, description=None, json_schema_extra={"field_kind": "output"})),
        (lambda: OutputField(default=1, title="T", description="d", ui_hidden=True), lambda: Field(
            default=1, title="T", description="d", json_schema_extra={"field_kind": "output", "ui_hidden": True})),
    ],
)
def test_input_and_output_fields_are_what_pydantic_field_would_make(ours: Any, pydantics: Any) -> None:
    # InputField and OutputField build their FieldInfo without pydantic's Field() (which costs three times as much
    # per field at start-up); the result must be the very same FieldInfo, or schemas and validation would drift.
    assert _field_state(ours()) == _field_state(pydantics())


def test_the_type_tag_is_the_field_pydantic_field_would_make() -> None:
    @invocation("tag_probe")
    class TagProbe(BaseInvocation):
        def invoke(self, context: Any) -> Any:
            raise NotImplementedError

    expected = FieldInfo.from_annotated_attribute(Literal["tag_probe"], Field(default="tag_probe",
                                                                              description="The node type"))
    assert _field_state(TagProbe.model_fields["type"]) == _field_state(expected)
