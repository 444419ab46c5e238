"""Core nodes, one at a time through invoke_sdk.testing, and their InvokeAI-compatible ids."""

from __future__ import annotations

import pytest
from invoke_core_nodes import collections, math, primitives, strings
from invoke_sdk.testing import run_node
from pydantic import ValidationError

ALL = [*primitives.NODES, *math.NODES, *collections.NODES, *strings.NODES]


def test_type_ids_match_invokeai() -> None:
    ids = {cls.invocation_info().type for cls in ALL}  # type: ignore[union-attr]
    assert {"integer", "float", "string", "boolean", "integer_collection", "float_collection", "string_collection",
            "boolean_collection", "add", "sub", "mul", "div", "rand_int", "range", "range_of_size", "iterate",
            "collect", "string_join", "string_replace", "string_split", "float_to_int"} <= ids


def test_math() -> None:
    assert run_node(math.AddInvocation(a=2, b=3)).value == 5
    assert run_node(math.SubtractInvocation(a=2, b=3)).value == -1
    assert run_node(math.MultiplyInvocation(a=4, b=3)).value == 12
    assert run_node(math.DivideInvocation(a=-7, b=2)).value == -3
    assert run_node(math.DivideFloatInvocation(a=1, b=4)).value == 0.25
    with pytest.raises(ZeroDivisionError, match="by zero"):
        run_node(math.DivideInvocation(a=1, b=0))


def test_conversions() -> None:
    assert run_node(math.FloatToIntegerInvocation(value=13.6, multiple=8)).value == 16
    assert run_node(math.FloatToIntegerInvocation(value=13.6, method="Floor")).value == 13
    assert run_node(math.FloatToIntegerInvocation(value=-2.5, method="Truncate")).value == -2
    assert run_node(math.IntegerToFloatInvocation(value=3)).value == 3.0


def test_rand_int_is_seeded_and_uncached() -> None:
    one = run_node(math.RandomIntInvocation(low=0, high=1000, seed=42)).value
    assert one == run_node(math.RandomIntInvocation(low=0, high=1000, seed=42)).value
    assert 0 <= one < 1000
    assert math.RandomIntInvocation().use_cache is False
    assert math.RandomIntInvocation.invocation_info().use_cache is False  # type: ignore[union-attr]


def test_ranges() -> None:
    assert run_node(collections.RangeInvocation(start=2, stop=8, step=3)).collection == [2, 5]
    assert run_node(collections.RangeOfSizeInvocation(start=1, size=3, step=2)).collection == [1, 3, 5]
    with pytest.raises(ValidationError, match="stop must be greater than start"):
        collections.RangeInvocation(start=5, stop=5)
    with pytest.raises(ValidationError):
        collections.RangeOfSizeInvocation(size=0)


def test_strings() -> None:
    assert run_node(strings.StringJoinInvocation(string_left="a", string_right="b")).value == "ab"
    assert run_node(strings.StringJoinThreeInvocation(string_left="a", string_middle="-", string_right="b")).value \
        == "a-b"
    replaced = run_node(strings.StringReplaceInvocation(string="A cat. a Cat.", search_string="cat",
                                                        replace_string="dog"))
    assert replaced.value == "A dog. a dog."
    regex = run_node(strings.StringReplaceInvocation(string="a1b22", search_string=r"\d+", replace_string="#",
                                                     use_regex=True))
    assert regex.value == "a#b#"
    split = run_node(strings.StringSplitInvocation(string="key=value=x", delimiter="="))
    assert (split.string_1, split.string_2) == ("key", "value=x")
    assert run_node(strings.StringSplitInvocation(string="one two three")).string_2 == "two three"


def test_primitives_and_engine_nodes() -> None:
    assert run_node(primitives.BooleanInvocation(value=True)).value is True
    assert run_node(primitives.FloatCollectionInvocation(collection=[1, 2.5])).collection == [1.0, 2.5]
    out = run_node(collections.IterateInvocation(collection=["a", "b"], index=1))
    assert (out.item, out.index, out.total) == ("b", 1, 2)
    assert run_node(collections.CollectInvocation(collection=[1, 2])).collection == [1, 2]
