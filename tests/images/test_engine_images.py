"""Image nodes run by the engine in a started host: saves land in the real store with their graph."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import invoke_image_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_sqlite_storage.plugin
import pytest
from invoke_sdk.images import RUN_MANIFEST_KEY

from invoke_host.config import HostConfig
from invoke_host.engine import run_graph_async
from invoke_host.graph import GraphBase
from invoke_host.host import Host, build_host


def _edge(src: str, src_field: str, dst: str, dst_field: str) -> dict[str, dict[str, str]]:
    return {"source": {"node_id": src, "field": src_field}, "destination": {"node_id": dst, "field": dst_field}}


GRAPH = {
    "id": "g1",
    "nodes": {
        "blank": {"id": "blank", "type": "blank_image", "width": 32, "height": 16,
                  "color": {"r": 10, "g": 20, "b": 30, "a": 255}, "is_intermediate": True},
        "invert": {"id": "invert", "type": "img_invert", "is_intermediate": True},
        "save": {"id": "save", "type": "save_image", "metadata": {"seed": 7}},
    },
    "edges": [_edge("blank", "image", "invert", "image"), _edge("invert", "image", "save", "image")],
}


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    plugins = [invoke_sqlite_storage.plugin, invoke_local_file_storage.plugin, invoke_image_nodes.plugin]
    host = build_host(HostConfig(root=tmp_path), plugins, entry_points=False)
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def test_saved_image_records_its_session_node_and_graph(host: Host) -> None:
    result = await run_graph_async(host, GRAPH, session_id="session-1")
    assert result.status == "completed", [e.message for e in result.errors]
    service = host.images
    assert service is not None

    saved = result.output("save").image.image_name  # type: ignore[attr-defined]
    record = await service.get(saved)
    assert (record.session_id, record.node_id, record.is_intermediate) == ("session-1", "save", False)
    assert (record.width, record.height) == (32, 16)
    pixel = (await service.get_pil(saved)).getpixel((0, 0))
    assert pixel[:3] == (245, 235, 225)  # the inverted blank colour

    embedded = await service.embedded(saved)
    assert embedded.graph is not None and json.loads(embedded.graph) == GRAPH
    metadata = json.loads(embedded.metadata or "null")
    manifest = metadata.pop(RUN_MANIFEST_KEY)  # what made it, added by the host beside the node's own metadata
    assert metadata == {"seed": 7}
    assert [(p["distribution"], p["node_types"]) for p in manifest["plugins"]] == [
        ("invoke-image-nodes", sorted({n["type"] for n in GRAPH["nodes"].values()}))]

    intermediates = await service.get_many(is_intermediate=True)
    assert {i.node_id for i in intermediates.items} == {"blank", "invert"}


async def test_the_graph_is_dumped_for_images_once_per_run_and_only_when_a_node_saves(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    dumps: list[str] = []
    to_saved_dict = GraphBase.to_saved_dict

    def counted(graph: GraphBase) -> dict[str, Any]:
        dumps.append(graph.id)
        return to_saved_dict(graph)

    monkeypatch.setattr(GraphBase, "to_saved_dict", counted)
    result = await run_graph_async(host, GRAPH, session_id="session-2")
    assert result.status == "completed", [e.message for e in result.errors]
    assert dumps == ["g1"]  # three nodes saved an image; every one embeds the same dump
    service = host.images
    assert service is not None
    for node_id in ("blank", "invert", "save"):
        saved = result.output(node_id).image.image_name  # type: ignore[attr-defined]
        embedded = await service.embedded(saved)
        assert embedded.graph is not None and json.loads(embedded.graph) == GRAPH

    # A run whose nodes save nothing never dumps its graph.
    result = await run_graph_async(host, {"id": "g2", "nodes": {"c": {"type": "image_collection", "collection": []}}},
                                   session_id="session-3")
    assert result.status == "completed", [e.message for e in result.errors]
    assert result.output("c").collection == []  # type: ignore[attr-defined]
    assert dumps == ["g1"]
