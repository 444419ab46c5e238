"""The install service: background jobs that fetch, check, identify, hash, move and record a model.

Every job works in its own folder under ``<models>/.tmp``; only a complete, verified, probed and
hashed model is moved into place (one ``rename`` on the same file system), and only then is the
record added. Any failure or cancellation removes the job folder and whatever was moved, so no
partial files and no record remain.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from invoke_sdk.model_probing import ModelProber, UnknownModelError
from invoke_sdk.model_records import DuplicateModelError, ModelRecordStore
from invoke_sdk.models import ModelConfigBase, ModelSourceType
from pydantic import ValidationError

from invoke_host.models.address_policy import AddressPolicy, check_endpoint
from invoke_host.models.download_limits import DownloadLimits
from invoke_host.models.events import InstallEvents
from invoke_host.models.filenames import safe_filename
from invoke_host.models.hashing import hash_model, imohash_model, model_size
from invoke_host.models.hf_source import InstallCancelledError, download_hf_repo, parse_hf_source
from invoke_host.models.jobs import InstallJob, InstallStatus
from invoke_host.models.probing import check_files, probe_model
from invoke_host.models.url_download import download_url

__all__ = ["ModelInstallService", "stored_path"]

logger = logging.getLogger("invoke_host.models")


_DECLARED = frozenset({"type", "format", "base"})
"""The overrides that stand in for probing when no prober recognises a model."""


def stored_path(path: Path, models_dir: Path) -> str:
    """Paths inside the models directory are stored relative to it, so the data root can move."""
    try:
        return path.resolve().relative_to(models_dir.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


@dataclass
class _Control:
    task: asyncio.Task[None] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    access_token: str | None = field(default=None, repr=False)


class ModelInstallService:
    """Runs installs as background tasks; at most ``concurrency`` downloads at once."""

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
        limits: DownloadLimits | None = None,
    ) -> None:
        self.store = store
        self.validate = validate
        self.probers = list(probers)
        self.models_dir = models_dir
        self.policy = policy
        self.limits = limits or DownloadLimits()
        self.events = events or InstallEvents()
        self._downloads = asyncio.Semaphore(concurrency)
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
        if Path(source).expanduser().exists():
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
        work = self.tmp_dir / f"job-{job.id}-{os.getpid()}"
        moved: Path | None = None
        self.events.started(job)
        thread: asyncio.Future[Any] | None = None
        try:
            work.mkdir(parents=True, exist_ok=False)
            if job.source_type == ModelSourceType.Url:
                path = await self._download_url(job, work, control)
            elif job.source_type == ModelSourceType.HFRepoID:
                thread = asyncio.ensure_future(self._download_hf(job, work, control))
                path = await asyncio.shield(thread)
                thread = None
            else:
                path = Path(job.source).expanduser().resolve()
            job.status = InstallStatus.Running
            config, moved = await self._identify_and_place(job, path, work)
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
            await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)

    async def _download_url(self, job: InstallJob, work: Path, control: _Control) -> Path:
        headers = {"Authorization": f"Bearer {control.access_token}"} if control.access_token else {}
        async with self._downloads:
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
        async with self._downloads:
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

    async def _identify_and_place(self, job: InstallJob, path: Path, work: Path) -> tuple[ModelConfigBase, Path | None]:
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
            "path": "",
            **probed,
            **{k: v for k, v in job.config_overrides.items() if k not in {"key", "hash", "path"}},
        }
        moved: Path | None = None
        if job.inplace:
            fields["path"] = stored_path(path, self.models_dir)
        else:
            dest = self._destination(fields, path, key)
            fields["path"] = stored_path(dest, self.models_dir)
        try:
            config = self.validate(fields)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:] or e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"the model's config is not valid ({problems})") from None
        if not job.inplace:
            moved = await asyncio.to_thread(self._place, path, work, dest)
        return config, moved

    def _destination(self, fields: Mapping[str, Any], path: Path, key: str) -> Path:
        base = str(getattr(fields.get("base"), "value", fields.get("base")))
        type_ = str(getattr(fields.get("type"), "value", fields.get("type")))
        folder = self.models_dir / safe_filename(base) / safe_filename(type_)
        name = safe_filename(path.name)
        dest = folder / name
        if dest.exists():
            dest = folder / f"{Path(name).stem}-{key[:8]}{Path(name).suffix}"
        return dest

    @staticmethod
    def _place(path: Path, work: Path, dest: Path) -> Path:
        """Move (downloads) or copy-then-move (local sources) into place with one rename at the end."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            raise FileExistsError(f"{dest} already exists")
        if not path.is_relative_to(work):
            staged = work / "staged"
            if path.is_dir():
                shutil.copytree(path, staged)
            else:
                shutil.copy2(path, staged)
            path = staged
        os.replace(path, dest)
        return dest


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
