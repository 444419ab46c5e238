"""``invoke-host packs``: turn an InvokeAI node folder into a pip-installable plugin distribution.

InvokeAI installs community packs by copying a folder into its ``nodes`` directory. Here every capability is a
distribution found through its ``invoke_host.plugins`` entry point, so ``packs wrap`` writes a project around
the folder: the folder as a package, a generated plugin module that registers the pack's nodes through
``invokeai-compat``, and the pack's ``requirements.txt`` as its dependencies. ``pip install``, upgrade and
uninstall then work as for any pack. The host itself never imports the compat package: the generated plugin does.
"""

from __future__ import annotations

import keyword
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click

__all__ = ["WrappedPack", "packs", "wrap_pack"]

PLUGIN_MODULE = "_invoke_host_plugin"
"""The module written into the pack package that holds its hook implementation."""

COMPAT_REQUIREMENT = "invokeai-compat>=0.1,<0.2"
_SKIPPED_COPY = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".github", ".venv", "*.egg-info")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class PackError(click.ClickException):
    """A folder that cannot be wrapped; the message says what to change."""


@dataclass(frozen=True)
class WrappedPack:
    """What ``wrap_pack`` wrote: the project folder, its distribution and package names, its requirements."""

    project: Path
    distribution: str
    package: str
    requirements: tuple[str, ...]


def package_name(folder: Path) -> str:
    """The import name of the pack: its folder's name made a valid Python identifier."""
    name = re.sub(r"\W", "_", folder.name)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = f"pack_{name}"
    return name


def read_requirements(folder: Path) -> tuple[str, ...]:
    """The pack's ``requirements.txt`` lines that are requirements (no comments, options, or InvokeAI itself)."""
    path = folder / "requirements.txt"
    if not path.is_file():
        return ()
    found: list[str] = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        match = _REQUIREMENT_NAME.match(line)
        if match is None:
            raise PackError(f"{path}: cannot read the requirement {raw!r}; write it as NAME[SPECIFIER]")
        if match.group(1).lower().replace("_", "-") in {"invokeai", "invokeai-compat"}:
            continue  # the compat distribution stands in for InvokeAI
        found.append(line)
    return tuple(found)


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pyproject(distribution: str, version: str, package: str, requirements: tuple[str, ...], summary: str) -> str:
    deps = ", ".join(_toml_string(r) for r in (COMPAT_REQUIREMENT, *requirements))
    return f"""# Written by `invoke-host packs wrap`: an InvokeAI node pack as an Invoke Host plugin distribution.
[build-system]
requires = ["setuptools>=65"]
build-backend = "setuptools.build_meta"

[project]
name = {_toml_string(distribution)}
version = {_toml_string(version)}
description = {_toml_string(summary)}
requires-python = ">=3.11"
dependencies = [{deps}]

[project.entry-points."invoke_host.plugins"]
{package} = "{package}.{PLUGIN_MODULE}"

[tool.setuptools.packages.find]
include = ["{package}", "{package}.*"]
namespaces = true

[tool.setuptools.package-data]
"*" = ["**/*"]
"""


def _plugin_module(package: str) -> str:
    return f'''"""Written by `invoke-host packs wrap`: registers the nodes of the InvokeAI pack {package!r}."""

from invokeai_compat.pack_plugin import register_pack

register_invocations = register_pack({package!r})
'''


def wrap_pack(folder: Path, out: Path, *, distribution: str | None = None, version: str = "0.1.0",
              package: str | None = None) -> WrappedPack:
    """Write a project for the InvokeAI node pack in ``folder`` under ``out``; return what was written."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise PackError(f"{folder} is not a folder: give the pack's folder (the one holding its __init__.py)")
    if not (folder / "__init__.py").is_file():
        raise PackError(
            f"{folder} has no __init__.py: InvokeAI loads a pack by importing its folder's __init__.py, which "
            "imports the pack's node modules; give that folder (for a repository, often a subfolder)"
        )
    package = package or package_name(folder)
    if not package.isidentifier() or keyword.iskeyword(package):
        raise PackError(f"--package {package!r} is not a Python identifier")
    distribution = distribution or f"invokeai-pack-{package.lower().replace('_', '-')}"
    requirements = read_requirements(folder)
    project = out.resolve() / distribution
    if project.exists():
        raise PackError(f"{project} exists already; remove it or choose another --out")
    shutil.copytree(folder, project / package, ignore=_SKIPPED_COPY)
    (project / package / f"{PLUGIN_MODULE}.py").write_text(_plugin_module(package), encoding="utf-8")
    summary = f"The InvokeAI node pack {folder.name}, wrapped as an Invoke Host plugin"
    (project / "pyproject.toml").write_text(
        _pyproject(distribution, version, package, requirements, summary), encoding="utf-8"
    )
    return WrappedPack(project=project, distribution=distribution, package=package, requirements=requirements)


@click.group()
def packs() -> None:
    """Node packs written for other systems (InvokeAI) as plugin distributions."""


@packs.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Folder to write the project into (as OUT/<distribution>)")
@click.option("--name", "distribution", help="Distribution name (default invokeai-pack-<folder>)")
@click.option("--version", default="0.1.0", show_default=True, help="Distribution version")
@click.option("--package", help="Import name of the pack (default: its folder name as an identifier)")
@click.option("--wheel", is_flag=True, help="Also build a wheel into OUT (with pip, no dependencies fetched)")
@click.option("--install", is_flag=True, help="pip install the project into this Python's environment")
def wrap(path: Path, out: Path, distribution: str | None, version: str, package: str | None, wheel: bool,
         install: bool) -> None:
    """Wrap the InvokeAI node pack in PATH as a pip-installable distribution with an entry point."""
    wrapped = wrap_pack(path, out, distribution=distribution, version=version, package=package)
    click.echo(f"Wrote {wrapped.project} (distribution {wrapped.distribution}, package {wrapped.package})")
    if wrapped.requirements:
        click.echo(f"Requirements from requirements.txt: {', '.join(wrapped.requirements)}")
    pip = [sys.executable, "-m", "pip"]
    if wheel:
        subprocess.run([*pip, "wheel", "--no-deps", "--wheel-dir", str(out), str(wrapped.project)], check=True)
    if install:
        subprocess.run([*pip, "install", str(wrapped.project)], check=True)
    else:
        click.echo(f"Install it with: pip install {wrapped.project}")
