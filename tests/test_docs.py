"""Docs that cannot rot: every hook specification is documented and exercised by a sample pack."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

from invoke_sdk import hookspecs

ROOT = Path(__file__).parent.parent


def _hook_names() -> list[str]:
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]


def test_every_hook_has_a_docs_heading() -> None:
    text = (ROOT / "docs" / "plugin-hooks.md").read_text()
    missing = [name for name in _hook_names() if f"## {name}\n" not in text]
    assert not missing, f"hooks without a heading in docs/plugin-hooks.md: {missing}"


def test_every_hook_has_a_docstring() -> None:
    assert all(getattr(hookspecs, name).__doc__ for name in _hook_names())


def test_every_hook_is_implemented_somewhere_in_the_repository() -> None:
    sources = "\n".join(
        p.read_text() for d in ("plugins", "tests", "docs") for p in (ROOT / d).rglob("*.py")
    )
    unused = [name for name in _hook_names() if f"def {name}(" not in sources]
    assert not unused, f"hooks no plugin or test implements: {unused}"


def test_every_limit_setting_is_in_the_security_guide() -> None:
    from invoke_host.config import HostConfig

    text = (ROOT / "docs" / "security.md").read_text()
    limits = [
        name for name in HostConfig.model_fields
        if name.startswith(("max_", "ws_", "download_")) or name.endswith(("_timeout_s", "_bytes"))
    ]
    assert len(limits) > 10
    missing = [name for name in limits if f"`{name}`" not in text]
    assert not missing, f"limits without a row in docs/security.md: {missing}"


def _python_snippets(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)


def test_every_python_snippet_of_the_node_pack_guide_imports_what_it_uses(tmp_path: Path) -> None:
    """A reader copies a snippet whole: each must name only what it imports or defines itself."""
    snippets = _python_snippets(ROOT / "docs" / "writing-a-node-pack.md")
    assert len(snippets) >= 8
    for number, snippet in enumerate(snippets):
        (tmp_path / f"snippet_{number}.py").write_text(snippet)
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run([str(ruff), "check", "--no-cache", "--isolated", "--select", "F821,F401", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_node_pack_guides_tests_are_the_example_packs_tests() -> None:
    """Each test function the guide shows is, word for word, one the suite runs in the example pack."""
    pack_tests = (ROOT / "docs" / "examples" / "invoke-example-pack" / "tests" / "test_example_pack.py").read_text()
    shown = [
        block for snippet in _python_snippets(ROOT / "docs" / "writing-a-node-pack.md")
        for block in re.findall(r"^def (?:test_\w+|write_lora)\(.*?(?=\n\n\n|\Z)", snippet, flags=re.DOTALL | re.M)
    ]
    assert len(shown) == 7  # the six tests and the LoRA writer
    missing = [block.splitlines()[0] for block in shown if block.rstrip() not in pack_tests]
    assert not missing, f"guide tests that differ from the example pack's: {missing}"
