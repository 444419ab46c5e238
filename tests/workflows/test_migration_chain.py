"""The migration chain (``invoke_sdk.node_migrations.upgrade_node``) and how the registry takes migrations."""

from __future__ import annotations

import re
from typing import Any

import pytest
from invoke_sdk import hookimpl
from invoke_sdk.hookspecs import RegisterInvocation, RegisterNodeMigration
from invoke_sdk.node_migrations import NodeMigration, NodeVersionError, upgrade_node

from invoke_host.graph import validate_graph
from invoke_host.host import build_host
from tests.queue.conftest import AddInvocation


def _rename(old: str, new: str) -> Any:
    def migrate(node: dict[str, Any]) -> dict[str, Any]:
        node = dict(node)
        node[new] = node.pop(old)
        return node

    return migrate


CHAIN = [
    NodeMigration("t", "1.0.0", "2.0.0", _rename("a", "b")),
    NodeMigration("t", "2.1.0", "3.0.0", _rename("b", "c")),
]


@pytest.mark.parametrize(
    ("version", "field"),
    [
        ("1.0.0", "a"),  # 1.0.0 -> 2.0.0, taken as 2.1.0 (a compatible release), -> 3.0.0
        ("1.4.2", "a"),  # a later release of major 1 takes the migration written from 1.0.0
        ("2.0.3", "b"),  # moves up to 2.1.0 as it is, then -> 3.0.0
        ("2.1.0", "b"),
    ],
)
def test_the_chain_takes_each_step_and_treats_releases_of_one_major_as_compatible(version: str, field: str) -> None:
    upgraded = upgrade_node({"type": "t", "version": version, field: 1}, "3.0.0", CHAIN, pack="p")
    assert upgraded == {"type": "t", "c": 1}
    first = "1.0.0 to 2.0.0" if version.startswith("1.") else "2.1.0 to 3.0.0"  # the step that meets no field
    with pytest.raises(NodeVersionError, match=re.escape(f"the migration from {first} of p failed: KeyError")):
        upgrade_node({"type": "t", "version": version, "z": 1}, "3.0.0", CHAIN, pack="p")


def test_what_the_chain_refuses() -> None:
    assert upgrade_node({"type": "t", "a": 1}, "3.0.0", CHAIN) == {"type": "t", "a": 1}  # no version: current
    assert upgrade_node({"type": "t", "version": "3.0.0", "c": 1}, "3.0.0", CHAIN) == {"type": "t", "c": 1}
    with pytest.raises(NodeVersionError, match=re.escape("no migration from 0.5.0")):
        upgrade_node({"type": "t", "version": "0.5.0"}, "3.0.0", CHAIN)
    with pytest.raises(NodeVersionError, match=re.escape("newer than version 3.0.0")):
        upgrade_node({"type": "t", "version": "3.0.1"}, "3.0.0", CHAIN)
    wrong = [NodeMigration("t", "1.0.0", "2.0.0", lambda node: {"type": "other"})]
    with pytest.raises(NodeVersionError, match="a node of another type"):
        upgrade_node({"type": "t", "version": "1.0.0"}, "2.0.0", wrong)
    past = [NodeMigration("t", "1.0.0", "4.0.0", lambda node: node)]
    with pytest.raises(NodeVersionError, match=re.escape("lead to 4.0.0, past the installed 2.0.0")):
        upgrade_node({"type": "t", "version": "1.0.0"}, "2.0.0", past)
    with pytest.raises(ValueError, match="does not go to a newer version"):
        NodeMigration("t", "2.0.0", "1.0.0", lambda node: node)


class Owner:
    @hookimpl
    def register_invocations(self, register: RegisterInvocation) -> None:
        register(AddInvocation)

    @hookimpl
    def register_node_migrations(self, register: RegisterNodeMigration) -> None:
        register("test_add", "0.1.0", "1.0.0", _rename("x", "a"))
        register("test_add", "0.1.0", "0.9.0", _rename("x", "a"))  # a second step from 0.1.0
        register("test_add", "zero", "1.0.0", _rename("x", "a"))  # not a version


class Stranger:
    @hookimpl
    def register_node_migrations(self, register: RegisterNodeMigration) -> None:
        register("test_add", "0.5.0", "1.0.0", lambda node: {"type": "test_add", "a": 999})


def test_only_the_nodes_own_plugin_migrates_it_and_bad_offers_are_refused_alone() -> None:
    host = build_host(plugins=[("owner", Owner()), ("stranger", Stranger())], entry_points=False)
    assert set(host.registry.kind("node_migrations")) == {"test_add@0.1.0"}
    owner, stranger = (next(r for r in host.registry.plugins if r.name == n) for n in ("owner", "stranger"))
    assert owner.status == "loaded" and owner.registered["invocations"] == ["test_add"]
    assert any("'test_add@0.1.0'" in line and "first" in line for line in owner.refused)
    assert any("'zero' is not a version" in line for line in owner.refused)
    assert stranger.refused == [
        "node migration 'test_add@0.5.0' from plugin 'stranger' is refused: a plugin may migrate only the node "
        "types it registers, and it is plugin 'owner''s"
    ]
    graph = {"nodes": {"n": {"type": "test_add", "version": "0.1.0", "x": 7}}, "edges": []}
    result = validate_graph(host.registry, graph)
    assert result.valid, result.errors
    assert result.graph is not None and result.graph.nodes["n"].a == 7
