"""How the pack's nodes changed between versions: each step maps a node's dict to the next version's.

A migration gets a copy of the node (``id``, ``type`` and its input values, no ``version``) and returns the dict
the newer version takes. Only breaking changes need one: a minor or patch release is taken as compatible.
"""

from typing import Any


def greet_1_to_2(node: dict[str, Any]) -> dict[str, Any]:
    """example_greet 2.0.0 calls the input ``name`` ``who``."""
    upgraded = dict(node)
    if "name" in upgraded:
        upgraded["who"] = upgraded.pop("name")
    return upgraded
