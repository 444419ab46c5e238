"""Where a model record may point, and what deleting a model may remove.

A record's path names that model's own file or folder. Judged after symlinks are resolved, it is never
the models directory, a folder above it, or inside the install jobs' working folder, and it is never
the same as, above or below another record's path. A model the host placed (``inplace=False``) lies
strictly inside the models directory, and only such a model's files are ever deleted; a model
registered in place (``inplace=True``) is only ever unregistered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from invoke_sdk.models import ModelConfigBase
from invoke_sdk.models.records import ModelRecordError

__all__ = ["ModelPathError", "ModelPaths", "UnsafeDeleteError"]


class ModelPathError(ValueError):
    """A path a model record may not have; the message names the rule it breaks."""


class UnsafeDeleteError(ModelRecordError):
    """Deleting a model's files would remove more than that model's own files, so nothing was deleted."""


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


class ModelPaths:
    """The path rules for one models directory, and the lock that makes a check and its change one step."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir.resolve()
        self.tmp_dir = self.models_dir / ".tmp"
        # Held from a path check until the record is added or the files are gone: two installs (or an
        # install and a delete) never pass the same check against the same set of records.
        self.lock = asyncio.Lock()

    def absolute(self, stored: str) -> Path:
        """The absolute path of a record's ``path`` (relative ones are inside the models directory)."""
        path = Path(stored)
        return path if path.is_absolute() else self.models_dir / path

    def stored(self, path: Path) -> str:
        """Paths inside the models directory are stored relative to it, so the data root can move."""
        real = path.resolve()
        return real.relative_to(self.models_dir).as_posix() if real.is_relative_to(self.models_dir) else str(real)

    def check_source(self, path: Path) -> Path:
        """A local install source, resolved: not the models directory, a folder above it, or a job folder."""
        real = path.expanduser().resolve()
        if self.models_dir.is_relative_to(real):
            raise ModelPathError(
                f"{path} is the models directory {self.models_dir} or a folder that holds it: "
                "install a model's own file or folder"
            )
        if real.is_relative_to(self.tmp_dir):
            raise ModelPathError(f"{path} is inside the install jobs' working folder {self.tmp_dir}")
        return real

    def check_inplace(self, path: Path, others: Iterable[ModelConfigBase]) -> Path:
        """A path to register in place, resolved: a source path that no other record's path overlaps."""
        real = self.check_source(path)
        self._check_alone(path, real, others)
        return real

    def check_owned(self, path: Path, others: Iterable[ModelConfigBase]) -> Path:
        """A path whose files the host may place and delete, resolved; :class:`ModelPathError` otherwise.

        It must be strictly inside the models directory (outside the job folder), not itself a symlink, and no
        other record's path may overlap it.
        """
        if path.is_symlink():
            raise ModelPathError(f"{path} is a symbolic link, not files the host placed")
        real = path.resolve()
        if real == self.models_dir or not real.is_relative_to(self.models_dir):
            raise ModelPathError(
                f"{path} resolves to {real}, not to a place inside the models directory {self.models_dir}"
            )
        if real.is_relative_to(self.tmp_dir):
            raise ModelPathError(f"{path} is inside the install jobs' working folder {self.tmp_dir}")
        self._check_alone(path, real, others)
        return real

    def _check_alone(self, path: Path, real: Path, others: Iterable[ModelConfigBase]) -> None:
        for other in others:
            theirs = self.absolute(other.path).resolve()
            if _overlap(real, theirs):
                relation = "is" if real == theirs else ("is inside" if real.is_relative_to(theirs) else "holds")
                raise ModelPathError(
                    f"{path} {relation} the files of the model {other.name!r} (key {other.key}) at {theirs}: "
                    "each model needs its own file or folder"
                )
