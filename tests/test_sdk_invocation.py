"""What the SDK's decorators and fields promise a node author."""

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
