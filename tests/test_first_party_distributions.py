"""The metadata of every distribution this repository ships says what its code needs, and names it as the rest do.

Read from the pyproject files and the sources themselves (with ``ast``, nothing is imported), so a plugin that
starts importing a library it does not declare fails here instead of on a user's machine where that library
happened not to come along with something else.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parent.parent
PLUGINS = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))
DISTRIBUTIONS = [ROOT, ROOT / "sdk", *PLUGINS]

DECLARED_NOT_IMPORTED: dict[str, dict[str, str]] = {
    "invoke-diffusers-nodes": {
        "scipy": "diffusers' LMS scheduler integrates its coefficients with it",
    },
}
"""Dependencies a distribution needs at run time without importing them by name, and why."""

IMPORTED_NOT_DECLARED: dict[str, dict[str, str]] = {
    "invoke-host": {
        "torch": "optional: imported inside the functions that read pickles or store tensors, which say how to "
        "install it when it is missing",
        "pytest": "only invoke_host.pytest_plugin imports it, and only pytest loads that (the pytest11 entry point)",
    },
    "invokeai-compat": {
        "torch": "InvokeAI's device and tensor helpers import it when a pack calls them; packs that do need torch "
        "anyway, and the compat layer itself must not pull it in",
        "numpy": "imported by image_resized_to_grid_as_tensor only, with torch",
    },
    "invoke-spandrel-nodes": {
        "spandrel": "an extra ([spandrel]) installed with --no-deps by scripts/bootstrap: its torchvision requirement "
        "cannot load beside the CPU torch build; the plugin says how to install it when it is missing",
    },
}
"""Imports a distribution deliberately leaves undeclared, and why."""


def _project(folder: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    return project


def _import_packages(folder: Path) -> list[str]:
    """The top-level import packages the distribution ships, from its setuptools configuration."""
    setuptools = tomllib.loads((folder / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = setuptools["packages"]
    names = packages if isinstance(packages, list) else [p.rstrip("*") for p in packages["find"]["include"]]
    return sorted({name.split(".")[0] for name in names})


def _imported_names(folder: Path) -> dict[str, list[str]]:
    """Top-level names of every absolute import in the distribution's code -> the files that import them."""
    found: dict[str, set[str]] = {}
    for package in _import_packages(folder):
        for path in sorted((folder / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(path.relative_to(folder).as_posix())
    return {name: sorted(files) for name, files in found.items()}


@cache
def _providers() -> dict[str, list[str]]:
    return packages_distributions()


def _distribution_of(import_name: str) -> str | None:
    """The distribution that provides a top-level import name in this environment (None for the standard library)."""
    if import_name in sys.stdlib_module_names:
        return None
    providers = _providers().get(import_name)
    assert providers, f"nothing installed here provides the module {import_name!r}; install it, or declare it"
    return canonicalize_name(providers[0])


def _declared(folder: Path) -> set[str]:
    return {canonicalize_name(Requirement(text).name) for text in _project(folder).get("dependencies", [])}


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=lambda f: _project(f)["name"])
def test_a_distribution_declares_every_library_it_imports_and_nothing_it_does_not_need(folder: Path) -> None:
    name = canonicalize_name(_project(folder)["name"])
    imported: dict[str, list[str]] = {}
    for import_name, files in _imported_names(folder).items():
        distribution = _distribution_of(import_name)
        if distribution is not None and distribution != name:
            imported.setdefault(distribution, []).extend(files)
    declared = _declared(folder)
    undeclared = {d: files for d, files in imported.items() if d not in declared}
    assert undeclared.keys() == IMPORTED_NOT_DECLARED.get(name, {}).keys(), (
        f"{name} imports distributions its pyproject does not declare (distribution -> importing files): "
        f"{undeclared}"
    )
    unused = declared - imported.keys()
    assert unused == DECLARED_NOT_IMPORTED.get(name, {}).keys(), (
        f"{name} declares dependencies its code never imports: {sorted(unused)} (remove them, or say in "
        "DECLARED_NOT_IMPORTED why they are needed)"
    )


NAMED_FOR_ANOTHER_SYSTEM: dict[str, tuple[str, list[str], str]] = {
    "invokeai_compat": (
        "invokeai-compat", ["invokeai", "invokeai_compat"],
        "InvokeAI packs import `invokeai`, so that import name is the point; it registers nothing itself (each "
        "wrapped pack has its own entry point), so it has no entry point",
    ),
}
"""First-party distributions that provide another system's import names, with the names they ship and why."""


@pytest.mark.parametrize("folder", PLUGINS, ids=lambda f: f.name)
def test_a_first_party_plugin_is_named_after_its_folder(folder: Path) -> None:
    if folder.name in NAMED_FOR_ANOTHER_SYSTEM:
        distribution, packages, _why = NAMED_FOR_ANOTHER_SYSTEM[folder.name]
        assert canonicalize_name(_project(folder)["name"]) == distribution
        assert _import_packages(folder) == packages
        assert "entry-points" not in _project(folder)
        return
    # plugins/<x> ships the distribution invoke-<x> with the one import package invoke_<x>: a bare import name
    # could be claimed by any other distribution.
    assert canonicalize_name(_project(folder)["name"]) == canonicalize_name(f"invoke-{folder.name}")
    assert _import_packages(folder) == [f"invoke_{folder.name}"]
    [entry_module] = _project(folder)["entry-points"]["invoke_host.plugins"].values()
    assert re.fullmatch(rf"invoke_{folder.name}(\.\w+)*", entry_module)


def test_the_standard_extra_installs_exactly_the_first_party_plugins_at_their_versions() -> None:
    # `pip install 'invoke-host[standard]'` is how a pip user gets a working server; a plugin added under plugins/
    # and forgotten here would be missing from it, and a version bump past the range would make it uninstallable.
    extra = [Requirement(text) for text in _project(ROOT)["optional-dependencies"]["standard"]]
    plugins = {canonicalize_name(_project(folder)["name"]): _project(folder)["version"] for folder in PLUGINS}
    assert sorted(canonicalize_name(r.name) for r in extra) == sorted(plugins)
    for requirement in extra:
        version = plugins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version), f"{requirement} does not admit {requirement.name} {version}"
