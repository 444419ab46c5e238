"""Core nodes whose output size follows from an input refuse sizes past the host's limits before allocating."""

from __future__ import annotations

import pytest
from invoke_core_nodes import collections, strings
from invoke_sdk.limits import LimitExceededError, check_limit, host_limit, setting_env_var
from invoke_sdk.testing import FakeContext, run_node
from pydantic import ValidationError

LIMITS = {"max_collection_size": 10, "max_string_length": 1000}


def test_the_sdk_helpers_read_a_limit_only_where_the_host_gave_one() -> None:
    assert setting_env_var("max_collection_size") == "INVOKE_HOST_MAX_COLLECTION_SIZE"
    assert host_limit(LIMITS, "max_collection_size") == 10
    assert host_limit(None, "max_collection_size") is None
    assert host_limit({"max_collection_size": True}, "max_collection_size") is None
    check_limit(10**9, "max_collection_size", None, "anything")  # no limit given: nothing to check
    with pytest.raises(LimitExceededError) as caught:
        check_limit(11, "max_collection_size", LIMITS, "the size")
    assert str(caught.value) == ("the size is 11, which exceeds max_collection_size "
                                 "(INVOKE_HOST_MAX_COLLECTION_SIZE=10); make it smaller, or raise the setting")


@pytest.mark.parametrize(("cls", "fields"), [
    (collections.RangeOfSizeInvocation, {"size": 11}),
    (collections.RangeInvocation, {"start": 0, "stop": 22, "step": 2}),
])
def test_ranges_refuse_a_length_past_the_limit_when_validated_and_when_run(
    cls: type[collections.RangeInvocation], fields: dict[str, int]
) -> None:
    with pytest.raises(ValidationError, match=r"is 11, which exceeds max_collection_size"):
        cls.model_validate({"id": "r", **fields}, context=LIMITS)
    node = cls.model_validate({"id": "r", **fields})  # validated without the host's limits (a test, another host)
    with pytest.raises(LimitExceededError, match="max_collection_size"):
        run_node(node, FakeContext(config=LIMITS))
    assert len(run_node(node).collection) == 11  # no limits in the context: the node's own business
    ten = cls.model_validate({"id": "r", **fields, **({"size": 10} if "size" in fields else {"stop": 20})},
                             context=LIMITS)
    assert len(run_node(ten, FakeContext(config=LIMITS)).collection) == 10


def test_a_range_with_a_step_of_zero_is_left_to_fail_when_it_runs() -> None:
    node = collections.RangeInvocation.model_validate({"id": "r", "start": 0, "stop": 5, "step": 0}, context=LIMITS)
    with pytest.raises(ValueError, match="must not be zero"):
        run_node(node, FakeContext(config=LIMITS))


def test_string_replace_stops_once_the_text_passes_the_limit() -> None:
    node = strings.StringReplaceInvocation(string="a" * 100, search_string="a", replace_string="b" * 50)
    with pytest.raises(LimitExceededError) as caught:
        run_node(node, FakeContext(config=LIMITS))
    assert caught.value.setting == "max_string_length" and 1000 < caught.value.amount <= 1049
    assert run_node(node).value == "b" * 5000  # without a limit the replacement is complete


def test_string_replace_still_expands_group_references_within_the_limit() -> None:
    node = strings.StringReplaceInvocation(string="cat hat", search_string=r"(\w)at", replace_string=r"\1og",
                                           use_regex=True)
    assert run_node(node, FakeContext(config=LIMITS)).value == "cog hog"
    case = strings.StringReplaceInvocation(string="A cat", search_string="CAT", replace_string="dog")
    assert run_node(case, FakeContext(config=LIMITS)).value == "A dog"
    bad = strings.StringReplaceInvocation(string="cat", search_string="(c)", replace_string=r"\9", use_regex=True)
    with pytest.raises(ValueError, match="not a valid regular expression"):
        run_node(bad, FakeContext(config=LIMITS))
