"""``invoke-host run GRAPH.json``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from conftest import edge

from invoke_host.cli import main


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
