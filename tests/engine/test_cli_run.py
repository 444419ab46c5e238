"""``invoke-host run GRAPH.json``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import edge

from invoke_host.cli import main
from invoke_host.engine import NodeCompleted, NodeProgress, NodeStarted
from invoke_host.run_progress import RunProgress


def test_run_prints_outputs(tmp_path: Path, monkeypatch: object) -> None:
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps({"nodes": {"a": {"type": "integer", "value": 4}, "b": {"type": "add", "b": 3}},
                                 "edges": [edge("a", "value", "b", "a")]}))
    result = CliRunner().invoke(main, ["run", str(graph), "--root", str(tmp_path / "root"), "--quiet"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["status"] == "completed"
    assert body["outputs"]["b"] == [{"value": 7, "type": "integer_output"}]


def test_run_refuses_a_bad_graph(tmp_path: Path) -> None:
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps({"nodes": {"a": {"type": "no_such_node"}}}))
    result = CliRunner().invoke(main, ["run", str(graph), "--root", str(tmp_path / "root")])
    assert result.exit_code == 2
    assert "unknown node type 'no_such_node'" in result.stderr


@pytest.fixture
def steps_graph(with_wait_pack: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A graph of wait_pack's ``count_steps`` (reports each step with its percentage) and an integer."""
    monkeypatch.setenv("INVOKE_HOST_PLUGINS_ALLOW", "core_nodes,wait_pack,sqlite_storage,local_file_storage")
    graph = tmp_path / "steps.json"
    graph.write_text(json.dumps({"nodes": {"steps": {"type": "count_steps"}, "n": {"type": "integer", "value": 1}},
                                 "edges": []}))
    return graph


def _progress_lines(stderr: str, prefix: str = "") -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{prefix}  steps: ")]


def test_run_reports_each_tenth_of_a_nodes_progress_and_each_node(steps_graph: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(steps_graph), "--root", str(tmp_path / "root"),
                                       "--set", "steps.steps=20"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outputs"]["steps"] == [{"value": 20, "type": "integer_output"}]
    # Not a terminal: a line each time the bar passes another tenth, not one per step.
    assert _progress_lines(result.stderr) == [
        "  steps: 5% Step 1 of 20", *(f"  steps: {10 * t}% Step {2 * t} of 20" for t in range(1, 11))
    ]
    ran = [line.split(" in ")[0] for line in result.stderr.splitlines() if line.startswith("ran ")]
    assert sorted(ran) == ["ran n (integer)", "ran steps (count_steps)"]


def test_run_batch_runs_every_combination_and_says_which_values_each_run_had(
    steps_graph: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, ["run", str(steps_graph), "--root", str(tmp_path / "root"),
                                       "--batch", "n.value=1,2", "--batch", "steps.steps=[1, 2]"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["status"] == "completed"
    assert [(s["values"], s["outputs"]["n"][0]["value"], s["outputs"]["steps"][0]["value"])
            for s in body["sessions"]] == [
        ({"n.value": 1, "steps.steps": 1}, 1, 1), ({"n.value": 1, "steps.steps": 2}, 1, 2),
        ({"n.value": 2, "steps.steps": 1}, 2, 1), ({"n.value": 2, "steps.steps": 2}, 2, 2),
    ]
    assert "[2/4] n.value=1 steps.steps=2" in result.stderr.splitlines()
    assert _progress_lines(result.stderr, "[2/4] ") == ["[2/4]   steps: 50% Step 1 of 2",
                                                        "[2/4]   steps: 100% Step 2 of 2"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--set=nowhere.value=1", "--set names node 'nowhere', which is not in the graph (its nodes: n, steps)"),
        ("--set=steps", "--set takes NODE.FIELD=VALUE"),
        ("--batch=steps.steps=1,x", "batch data for node 'steps' field 'steps' (item 1) is invalid"),
        ("--batch=steps.steps=[1,", "--batch values '[1,' start like a JSON list but are not one"),
    ],
)
def test_run_refuses_a_set_or_batch_the_graph_cannot_take(
    steps_graph: Path, tmp_path: Path, option: str, message: str
) -> None:
    result = CliRunner().invoke(main, ["run", str(steps_graph), "--root", str(tmp_path / "root"), option])
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_text_field_takes_digits_as_text_and_a_number_field_as_a_number(tmp_path: Path) -> None:
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps({"nodes": {"s": {"type": "string"}, "i": {"type": "integer"}}, "edges": []}))
    result = CliRunner().invoke(main, ["run", str(graph), "--root", str(tmp_path / "root"), "--quiet",
                                       "--set", "s.value=1984", "--set", "i.value=1984"])
    assert result.exit_code == 0, result.output
    outputs = json.loads(result.stdout)["outputs"]
    assert (outputs["s"][0]["value"], outputs["i"][0]["value"]) == ("1984", 1984)


def test_on_a_terminal_a_nodes_bar_is_redrawn_in_place_then_replaced_by_its_line() -> None:
    out = io.StringIO()
    progress = RunProgress(out, tty=True)
    node = dict(session_id="s", node_id="d1", source_node_id="d", invocation_type="denoise")
    progress(NodeStarted(**node))
    for step in (1, 2):
        progress(NodeProgress(**node, message=f"Denoising step {step} of 2", percentage=step / 2))
    progress(NodeCompleted(**node, output=None, cached=True))
    assert out.getvalue() == (
        "\r\x1b[K  d [############------------]  50%  Denoising step 1 of 2"
        "\r\x1b[K  d [########################] 100%  Denoising step 2 of 2"
        "\r\x1b[Kran d (denoise) [cached]\n"
    )
