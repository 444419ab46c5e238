"""The pack's own tests: one node with a fake context, and graphs through the real engine.

The ``invoke_host`` fixture comes with invoke-host's pytest plugin; a safetensors file is a JSON header and raw
bytes, so ``write_lora`` needs only the standard library.
"""

import json
import math
import struct
from pathlib import Path

import pytest
from example_pack.nodes import RepeatInvocation
from invoke_sdk.testing import FakeContext, run_node
from PIL import Image

from invoke_host.pytest_plugin import InProcessHost, SessionFailedError


def test_repeat_alone() -> None:
    context = FakeContext()
    assert run_node(RepeatInvocation(text="hi", times=3), context).text == "hi hi hi"
    assert context.util.progress[0].message == "repeating 3 times"


def test_graph_through_the_host(invoke_host: InProcessHost) -> None:
    graph = {
        "nodes": {"r": {"type": "example_repeat", "text": "a b"}, "c": {"type": "example_word_count"}},
        "edges": [{"source": {"node_id": "r", "field": "text"}, "destination": {"node_id": "c", "field": "text"}}],
    }
    result = invoke_host.run(graph)
    assert result.output("c").count == 4


def test_invert_saves_the_inverted_image(invoke_host: InProcessHost) -> None:
    source = invoke_host.add_image(Image.new("RGB", (4, 2), (10, 20, 30)))
    graph = {"nodes": {"i": {"type": "example_invert", "image": {"image_name": source.image_name}}}, "edges": []}
    output = invoke_host.run(graph).output("i")
    assert (output.width, output.height) == (4, 2)
    assert invoke_host.get_image(output.image).getpixel((0, 0)) == (245, 235, 225)


def test_a_missing_image_fails_with_the_nodes_own_error(invoke_host: InProcessHost) -> None:
    graph = {"nodes": {"i": {"type": "example_invert", "image": {"image_name": "nowhere.png"}}}, "edges": []}
    with pytest.raises(SessionFailedError, match=r"node 'i' \(example_invert\) failed: ImageNotFoundError"):
        invoke_host.run(graph)


def write_lora(path: Path) -> Path:
    """A tiny SD 1.x LoRA in kohya's key layout."""
    shapes = {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 768),
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight": (320, 4),
    }
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 2 * math.prod(shape)  # float16
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + bytes(offset))
    return path


def test_lora_size_counts_an_installed_loras_weights(invoke_host: InProcessHost, tmp_path: Path) -> None:
    lora = invoke_host.install_model(write_lora(tmp_path / "tiny-lora.safetensors"))
    assert (lora.type, lora.base) == ("lora", "sd-1")
    graph = {"nodes": {"n": {"type": "example_lora_size", "lora": lora.model_dump()}}, "edges": []}
    assert invoke_host.run(graph).output("n").count == 4 * 768 + 320 * 4


def test_a_greet_node_saved_with_1_0_0_is_migrated() -> None:
    import example_pack.plugin
    from example_pack.nodes import GreetInvocation
    from invoke_sdk.testing import migrate_node

    old = {"id": "g", "type": "example_greet", "version": "1.0.0", "name": "Ada"}
    node = migrate_node(example_pack.plugin, old, GreetInvocation)
    assert (node.who, node.greeting) == ("Ada", "Hello")


def test_the_shipped_workflow_runs(invoke_host: InProcessHost) -> None:
    import json
    from importlib import resources

    graph = json.loads(resources.files("example_pack").joinpath("workflows/greet_and_count.json").read_text())
    assert invoke_host.run(graph).output("count").count == 2
