"""The pack's own tests: one node with a fake context, and a graph through the real engine."""

from example_pack.nodes import RepeatInvocation
from invoke_sdk.testing import FakeContext, run_node


def test_repeat_alone() -> None:
    context = FakeContext()
    assert run_node(RepeatInvocation(text="hi", times=3), context).text == "hi hi hi"
    assert context.util.progress[0].message == "repeating 3 times"


def test_graph_through_the_host(invoke_host) -> None:  # the fixture comes with invoke-host's pytest plugin
    graph = {
        "nodes": {"r": {"type": "example_repeat", "text": "a b"}, "c": {"type": "example_word_count"}},
        "edges": [{"source": {"node_id": "r", "field": "text"}, "destination": {"node_id": "c", "field": "text"}}],
    }
    result = invoke_host.run(graph)
    assert result.status == "completed"
    assert result.output("c").count == 4
