"""The install service: background jobs that fetch, check, identify, hash, move and record a model.

Every job works in its own folder under ``<models>/.tmp``; a local source is copied there first, so the
bytes scanned and hashed are the bytes placed. Only a complete, verified, probed and hashed model is
moved into place (one ``rename`` onto a destination this job reserved), and only then is the record
added. Any failure or cancellation removes the job folder and what this job placed, so no partial files
and no record remain. Where a record may point is :mod:`invoke_host.models.record_paths`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from invoke_sdk.models import ModelConfigBase, ModelSourceType
from invoke_sdk.models.probing import ModelProber, UnknownModelError
from invoke_sdk.models.records import DuplicateModelError, ModelRecordStore
from pydantic import ValidationError

from invoke_host.models.address_policy import AddressPolicy, check_endpoint
from invoke_host.models.download_limits import DownloadLimits
from invoke_host.models.download_slots import DownloadSlots
from invoke_host.models.events import InstallEvents
from invoke_host.models.filenames import safe_filename
from invoke_host.models.hashing import hash_model, imohash_model, model_size
from invoke_host.models.hf_source import InstallCancelledError, download_hf_repo, parse_hf_source
from invoke_host.models.jobs import InstallJob, InstallStatus
from invoke_host.models.probing import check_files, probe_model
from invoke_host.models.record_paths import ModelPathError, ModelPaths
from invoke_host.models.url_download import download_url
from invoke_host.models.user_paths import expand_user_path

__all__ = ["ModelInstallService"]

logger = logging.getLogger("invoke_host.models")


_DECLARED = frozenset({"type", "format", "base"})
"""The overrides that stand in for probing when no prober recognises a model."""

_NOT_OVERRIDABLE = ("key", "hash", "path", "inplace")
"""Fields the install decides: from the content (key, hash), where it places the files (path, inplace)."""


@dataclass
class _Control:
    task: asyncio.Task[None] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    access_token: str | None = field(default=None, repr=False)


class ModelInstallService:
    """Runs installs as background tasks; at most ``concurrency`` downloads at once, or as many as ``slots`` (the
    host's :class:`DownloadSlots`, shared with the download cache) allow."""

    def __init__(
        self,
        *,
        store: ModelRecordStore,
        validate: Callable[[Mapping[str, Any]], ModelConfigBase],
        probers: Sequence[ModelProber],
        models_dir: Path,
        policy: AddressPolicy,
        events: InstallEvents | None = None,
        concurrency: int = 3,
        paths: ModelPaths | None = None,
        limits: DownloadLimits | None = None,
        slots: DownloadSlots | None = None,
    ) -> None:
        self.store = store
        self.validate = validate
        self.probers = list(probers)
        self.paths = paths or ModelPaths(models_dir)
        self.models_dir = self.paths.models_dir
        self.policy = policy
        self.limits = limits or DownloadLimits()
        self.events = events or InstallEvents()
        self._downloads = slots or DownloadSlots(concurrency)
        self._ids = itertools.count(1)
        self.jobs: dict[int, InstallJob] = {}
        self._controls: dict[int, _Control] = {}

    @property
    def tmp_dir(self) -> Path:
        return self.models_dir / ".tmp"

    def import_model(
        self,
        source: str,
        *,
        inplace: bool = True,
        variant: str | None = None,
        subfolder: str | None = None,
        config: Mapping[str, Any] | None = None,
        access_token: str | None = None,
    ) -> InstallJob:
        """Start installing ``source`` (a path, an http(s) URL or ``owner/repo[:subfolder]``); return its job.

        ``inplace`` registers a local model where it lies instead of copying it into the models directory.
        ``config`` overrides any probed attribute (``name``, ``base``, ``prediction_type`` ...).
        """
        source = source.strip()
        if not source:
            raise ValueError("the source is empty: give a path, an http(s) URL or a Hugging Face repo id")
        source_type = self._source_type(source, subfolder)
        fixed = sorted(set(_NOT_OVERRIDABLE).intersection(config or {}))
        if fixed:
            raise ValueError(
                f"the config overrides cannot set {', '.join(fixed)}: the install decides them (key and hash from "
                "the content; path and inplace from the source and the inplace parameter)"
            )
        if source_type is ModelSourceType.Path:
            self.paths.check_source(Path(source))  # refused now, as a 400, rather than as a failed job
        job = InstallJob(
            id=next(self._ids),
            source=source,
            source_type=source_type.value,
            inplace=inplace and source_type is ModelSourceType.Path,
            variant=variant or None,
            subfolder=subfolder or None,
            config_overrides=dict(config or {}),
        )
        control = _Control(access_token=access_token)
        self.jobs[job.id] = job
        self._controls[job.id] = control
        control.task = asyncio.get_running_loop().create_task(self._run(job, control), name=f"model-install-{job.id}")
        control.task.add_done_callback(lambda _task: self._cancelled_before_start(job))
        return job

    def _cancelled_before_start(self, job: InstallJob) -> None:
        # A task cancelled before its first step never runs _run's handlers: nothing was written yet.
        if not job.status.finished:
            job.status = InstallStatus.Cancelled
            self.events.cancelled(job)

    @staticmethod
    def _source_type(source: str, subfolder: str | None) -> ModelSourceType:
        if urlsplit(source).scheme in {"http", "https"}:
            return ModelSourceType.Url
        if expand_user_path(source).exists():
            return ModelSourceType.Path
        if parse_hf_source(source, subfolder) is not None:
            return ModelSourceType.HFRepoID
        if "://" in source:
            raise ValueError(f"only http and https URLs can be installed, not {source!r}")
        raise ValueError(f"{source!r} is not an existing file or folder, an http(s) URL, or a repo id like owner/name")

    def get_job(self, job_id: int) -> InstallJob:
        if job_id not in self.jobs:
            raise KeyError(f"no install job with id {job_id}")
        return self.jobs[job_id]

    def cancel_job(self, job_id: int) -> InstallJob:
        """Cancel a job that has not finished; a finished job is returned unchanged."""
        job = self.get_job(job_id)
        control = self._controls.get(job_id)
        if control is not None and not job.status.finished:
            control.cancel.set()
            if control.task is not None:
                control.task.cancel()
        return job

    def prune_jobs(self) -> int:
        """Forget finished jobs; return how many."""
        done = [i for i, job in self.jobs.items() if job.status.finished]
        for job_id in done:
            del self.jobs[job_id]
            self._controls.pop(job_id, None)
        return len(done)

    async def wait(self, job_id: int) -> InstallJob:
        """Wait for a job to finish (for the CLI and tests)."""
        control = self._controls.get(job_id)
        if control is not None and control.task is not None:
            await asyncio.wait([control.task])
        return self.get_job(job_id)

    async def stop(self) -> None:
        """Cancel every running job and wait for their clean-up."""
        for job_id, job in list(self.jobs.items()):
            if not job.status.finished:
                self.cancel_job(job_id)
        tasks = [c.task for c in self._controls.values() if c.task is not None]
        if tasks:
            await asyncio.wait(tasks)

    async def _run(self, job: InstallJob, control: _Control) -> None:
        work: Path | None = None
        moved: Path | None = None
        self.events.started(job)
        thread: asyncio.Future[Any] | None = None
        try:
            await asyncio.to_thread(self.tmp_dir.mkdir, parents=True, exist_ok=True)
            # A name no other job (of this process or another sharing the folder) holds: only this job's
            # folder is ever removed below.
            work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f"job-{job.id}-", dir=self.tmp_dir))
            if job.source_type == ModelSourceType.Url:
                path = await self._download_url(job, work, control)
            elif job.source_type == ModelSourceType.HFRepoID:
                thread = asyncio.ensure_future(self._download_hf(job, work, control))
                path = await asyncio.shield(thread)
                thread = None
            elif job.inplace:
                path = self.paths.check_source(Path(job.source))
            else:
                path = await asyncio.to_thread(_stage, self.paths.check_source(Path(job.source)), work)
            if not job.inplace and not _strictly_inside(path, work):
                raise ModelPathError(f"the downloaded model {path} is not inside its job folder {work}")
            job.status = InstallStatus.Running
            config, dest = await self._identify(job, path)
            moved = dest  # reserved by this job: removed again unless the record is added
            if dest is not None:
                await asyncio.to_thread(os.replace, path, dest)
            async with self.paths.lock:
                others = await self.store.search()
                if dest is None:
                    self.paths.check_inplace(path, others)
                else:
                    self.paths.check_owned(dest, others)
                await self.store.add(config)
            moved = None  # recorded: it is the model's home now
            job.config_out = config.model_dump(mode="json")
            job.status = InstallStatus.Completed
            self.events.completed(job)
        except asyncio.CancelledError:
            control.cancel.set()
            if thread is not None:
                await asyncio.wait([thread])  # let the download thread notice before its folder goes
            job.status = InstallStatus.Cancelled
            self.events.cancelled(job)
        except Exception as exc:  # noqa: BLE001 - every failure ends the job with its message, never the server
            job.status = InstallStatus.Error
            job.error_type = type(exc).__name__
            job.error = str(exc) or repr(exc)
            self.events.error(job)
        finally:
            if moved is not None:
                await asyncio.to_thread(_remove, moved)
            if work is not None:
                await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)

    async def _download_url(self, job: InstallJob, work: Path, control: _Control) -> Path:
        headers = {"Authorization": f"Bearer {control.access_token}"} if control.access_token else {}
        async with self._downloads.held():
            job.status = InstallStatus.Downloading
            self.events.download_started(job)

            def progress(done: int, total: int | None) -> None:
                job.bytes, job.total_bytes = done, total
                self.events.download_progress(job)

            path = await download_url(
                job.source, work, policy=self.policy, limits=self.limits, headers=headers, on_progress=progress
            )
        self.events.downloads_complete(job)
        return path

    async def _download_hf(self, job: InstallJob, work: Path, control: _Control) -> Path:
        source = parse_hf_source(job.source, job.subfolder)
        assert source is not None
        loop = asyncio.get_running_loop()

        def on_total(total: int) -> None:
            job.total_bytes = total

        def on_bytes(n: int) -> None:
            def apply() -> None:
                job.bytes += n
                self.events.download_progress(job)

            loop.call_soon_threadsafe(apply)

        endpoint = os.environ.get("HF_ENDPOINT")
        if endpoint:
            # huggingface_hub connects with its own client: judge the configured hub before it does.
            await asyncio.to_thread(check_endpoint, endpoint, self.policy, what="Hugging Face endpoint (HF_ENDPOINT)")
        async with self._downloads.held():
            job.status = InstallStatus.Downloading
            self.events.download_started(job)
            try:
                path = await asyncio.to_thread(
                    download_hf_repo,
                    source,
                    work / "repo",
                    variant=job.variant,
                    token=control.access_token,
                    on_total=on_total,
                    on_bytes=on_bytes,
                    cancelled=control.cancel.is_set,
                    endpoint=endpoint or None,
                    limits=self.limits,
                )
            except InstallCancelledError:
                raise asyncio.CancelledError from None
        self.events.downloads_complete(job)
        return path

    async def _identify(self, job: InstallJob, path: Path) -> tuple[ModelConfigBase, Path | None]:
        """The model's config, and (unless in place) the destination reserved for it: an empty placeholder."""
        await asyncio.to_thread(check_files, path)
        try:
            probed = await asyncio.to_thread(probe_model, path, self.probers)
        except UnknownModelError:
            # A model no prober knows (a new architecture, a tiny test model) installs when the caller says what
            # it is: type, format and base given as overrides are all the record needs.
            if not _DECLARED.issubset(job.config_overrides):
                raise UnknownModelError(
                    f"unknown model: no prober recognised {path}; install it with the config overrides "
                    f"{', '.join(sorted(_DECLARED))} to say what it is"
                ) from None
            probed = {}
        probed.pop("_prober", None)

        loop = asyncio.get_running_loop()

        def hash_progress(done: int, total: int) -> None:
            self.events.hashing_progress_threadsafe(loop, job, done, total)

        digest = await asyncio.to_thread(hash_model, path, hash_progress)
        key = digest.split(":", 1)[1][:32]
        if await self.store.exists(key):
            existing = await self.store.get(key)
            raise DuplicateModelError(
                f"this model is already installed as {existing.name!r} (key {key}, same content)", existing=key
            )
        source_type = ModelSourceType(job.source_type)
        name = str(job.config_overrides.get("name") or (path.stem if path.is_file() else path.name))
        if source_type is ModelSourceType.HFRepoID and "name" not in job.config_overrides:
            name = job.source.split("/", 1)[1].replace(":", "_")
        fields: dict[str, Any] = {
            "key": key,
            "hash": digest,
            "name": name,
            "source": job.source,
            "source_type": source_type,
            "file_size": await asyncio.to_thread(model_size, path),
            "imohash": await asyncio.to_thread(imohash_model, path),
            "path": self.paths.stored(path),
            "inplace": job.inplace,
            **probed,
            **job.config_overrides,
        }
        folder, name = self._destination(fields, path)
        if not job.inplace:
            fields["path"] = self.paths.stored(folder / name)
        try:
            config = self.validate(fields)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:] or e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"the model's config is not valid ({problems})") from None
        if job.inplace:
            return config, None
        dest = await asyncio.to_thread(self._reserve, folder, name, key, path.is_dir())
        return config.model_copy(update={"path": self.paths.stored(dest)}), dest

    def _destination(self, fields: Mapping[str, Any], path: Path) -> tuple[Path, str]:
        base = str(getattr(fields.get("base"), "value", fields.get("base")))
        type_ = str(getattr(fields.get("type"), "value", fields.get("type")))
        return self.models_dir / safe_filename(base) / safe_filename(type_), safe_filename(path.name)

    def _reserve(self, folder: Path, name: str, key: str, is_dir: bool) -> Path:
        """Create the model's destination empty (``name``, else ``name-<key>``) so no other install takes it."""
        if not _strictly_inside(folder, self.models_dir):
            # Checked before mkdir: a symlinked models/<base> must not make folders elsewhere.
            raise ModelPathError(f"{folder} resolves to {folder.resolve()}, outside the models directory")
        folder.mkdir(parents=True, exist_ok=True)
        for candidate in (name, f"{Path(name).stem}-{key[:8]}{Path(name).suffix}"):
            dest = folder / candidate
            try:
                if is_dir:
                    dest.mkdir()
                else:
                    os.close(os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                continue
            return dest
        raise FileExistsError(f"{folder / name} and its alternative name are both taken")


def _strictly_inside(path: Path, folder: Path) -> bool:
    real, container = path.resolve(), folder.resolve()
    return real != container and real.is_relative_to(container)


def _stage(source: Path, work: Path) -> Path:
    """Copy a local source into the job folder under its own name: what is scanned is what is placed."""
    staged = work / "source" / source.name
    staged.parent.mkdir()
    if source.is_dir():
        shutil.copytree(source, staged)
    else:
        shutil.copy2(source, staged)
    return staged


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
