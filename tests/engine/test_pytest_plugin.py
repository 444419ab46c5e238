"""The pack-author kit's ``invoke_host`` fixture, used here as a pack's tests use it."""

from __future__ import annotations

from typing import Any

import engine_test_nodes
import invoke_core_nodes.plugin
import invoke_image_nodes.plugin
import invoke_local_file_storage.plugin
import invoke_sqlite_storage.plugin
import pytest
from PIL import Image

from invoke_host.host import NodeShape
from invoke_host.pytest_plugin import InProcessHost, SessionFailedError


@pytest.fixture
def invoke_host_plugins() -> list[Any]:
    return [
        ("sqlite_storage", invoke_sqlite_storage.plugin), ("local_file_storage", invoke_local_file_storage.plugin),
        ("core_nodes", invoke_core_nodes.plugin), ("image_nodes", invoke_image_nodes.plugin),
        ("engine_test_nodes", engine_test_nodes),
    ]


def test_the_fixtures_host_has_its_services_started_and_no_queue(invoke_host: InProcessHost) -> None:
    host = invoke_host.host
    assert host.shape is NodeShape.SERVICES and host.queue is None and host.processors == []
    assert host.loop is invoke_host.loop and host.loop.is_running()


def test_nodes_save_and_read_images_through_the_started_store(invoke_host: InProcessHost) -> None:
    source = invoke_host.add_image(Image.new("RGB", (6, 3), (1, 2, 3)))
    graph = {
        "nodes": {"load": {"type": "image", "image": {"image_name": source.image_name}},
                  "blank": {"type": "blank_image", "width": 5, "height": 7}},
        "edges": [],
    }
    result = invoke_host.run(graph)
    assert (result.output("load").width, result.output("load").height) == (6, 3)
    made = result.output("blank").image
    assert invoke_host.get_image(made).size == (5, 7)
    record = invoke_host.call(invoke_host.host.images.get(made.image_name))
    assert record.node_id == "blank"


def test_a_failed_session_raises_with_the_nodes_own_error_and_traceback(invoke_host: InProcessHost) -> None:
    graph = {"nodes": {"n": {"type": "t_boom", "a": 7}, "c": {"type": "add"}},
             "edges": [{"source": {"node_id": "n", "field": "value"}, "destination": {"node_id": "c", "field": "a"}}]}
    with pytest.raises(SessionFailedError) as raised:
        invoke_host.run(graph)
    message = str(raised.value)
    assert message.startswith("the session failed\n\nnode 'n' (t_boom) failed: RuntimeError: boom at 7\n\nTraceback")
    assert 'raise RuntimeError(f"boom at {self.a}")' in message  # the node's own line
    assert raised.value.result.status == "failed"
    # check=False hands back the failed result instead.
    assert invoke_host.run(graph, check=False).errors[0].error_type == "RuntimeError"
