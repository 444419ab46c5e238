"""Docs that cannot rot: every hook specification is documented and exercised by a sample pack."""

from __future__ import annotations

import inspect
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
