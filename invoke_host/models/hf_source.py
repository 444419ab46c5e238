"""Installing from a Hugging Face repo id (``owner/repo[:subfolder]``) through ``huggingface_hub``.

``HF_ENDPOINT`` is read when a download starts (the library reads it only once, at import), so a
test or a mirror can point the host at another hub. Repo file paths are checked component by
component before anything is written: nothing lands outside the job's folder.

The download limits hold as far as the library lets them: the sizes the hub lists are checked
against ``max_bytes`` before the first file, and the bytes received and the deadline at every
progress report (``huggingface_hub`` reports per chunk of up to 10 MB). A stall is bounded by the
library's own read timeout (``HF_HUB_DOWNLOAD_TIMEOUT``, 10 s by default).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from invoke_host.models.download_limits import DownloadLimits
from invoke_host.models.filenames import safe_filename

__all__ = [
    "HFSource",
    "InstallCancelledError",
    "download_hf_file",
    "download_hf_repo",
    "list_hf_repo",
    "parse_hf_source",
    "select_files",
]

_REPO_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?::(?P<subfolder>[\w./-]+))?$")
_SKIP_SUFFIXES = (".msgpack", ".onnx", ".onnx_data", ".h5", ".ot", ".md")
_WEIGHTS = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")


class InstallCancelledError(Exception):
    """Raised inside a download thread when its job was cancelled."""


class HFSource:
    """A parsed ``owner/repo[:subfolder]``."""

    def __init__(self, repo_id: str, subfolder: str | None) -> None:
        self.repo_id = repo_id
        self.subfolder = subfolder.strip("/") if subfolder else None


def parse_hf_source(source: str, subfolder: str | None = None) -> HFSource | None:
    """The repo id and subfolder of ``source``, or None when it is not a repo id."""
    match = _REPO_ID.match(source)
    if match is None or source.startswith((".", "/")):
        return None
    sub = subfolder or match.group("subfolder")
    if sub and any(part in {"", ".", ".."} for part in sub.strip("/").split("/")):
        raise ValueError(f"bad subfolder {sub!r}")
    return HFSource(match.group("repo"), sub)


def _variant_of(name: str) -> tuple[str, str | None]:
    """('unet/diffusion_pytorch_model.safetensors', 'fp16') for '...model.fp16.safetensors'."""
    path = PurePosixPath(name)
    parts = path.name.split(".")
    if len(parts) >= 3 and path.suffix in _WEIGHTS:
        return str(path.with_name(".".join([*parts[:-2], parts[-1]]))), parts[-2]
    return name, None


def select_files(files: list[str], subfolder: str | None, variant: str | None) -> list[str]:
    """The repo files to fetch: inside the subfolder, the requested variant's weights when present (else full
    precision), safetensors over pickles in the same folder, and no flax/onnx/docs."""
    prefix = f"{subfolder}/" if subfolder else ""
    candidates = [f for f in files if f.startswith(prefix) and not f.endswith(_SKIP_SUFFIXES)]
    candidates = [f for f in candidates if not PurePosixPath(f).name.startswith(".")]
    by_plain: dict[str, dict[str | None, str]] = {}
    for name in candidates:
        plain, var = _variant_of(name)
        by_plain.setdefault(plain, {})[var] = name
    chosen: list[str] = []
    for plain, variants in by_plain.items():
        if variant and variant in variants:
            chosen.append(variants[variant])
        elif None in variants:
            chosen.append(variants[None])
        elif PurePosixPath(plain).suffix not in _WEIGHTS:
            chosen.extend(variants.values())
    folders_with_safetensors = {str(PurePosixPath(f).parent) for f in chosen if f.endswith(".safetensors")}
    return sorted(
        f
        for f in chosen
        if not (
            f.endswith((".bin", ".ckpt", ".pt", ".pth")) and str(PurePosixPath(f).parent) in folders_with_safetensors
        )
    )


def _check_path(name: str) -> None:
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or any(p != safe_filename(p, fallback="") for p in parts):
        raise ValueError(f"the repo holds a file with an unsafe path ({name!r}); refusing to download it")


class _Budget:
    """The bytes and the time one install may still use; every check raises the limit's own error."""

    def __init__(self, limits: DownloadLimits, repo_id: str) -> None:
        self.limits = limits
        self.what = f"the Hugging Face download of {repo_id!r}"
        self.deadline = time.monotonic() + limits.timeout_s
        self.received = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise self.limits.too_slow(self.what)

    def add(self, n: int) -> None:
        self.received += n
        if self.received > self.limits.max_bytes:
            raise self.limits.grew_too_large(self.what)
        self.check_time()


def _progress_tqdm(on_bytes: Callable[[int], None], cancelled: Callable[[], bool], budget: _Budget) -> type[Any]:
    from tqdm.auto import tqdm

    class _Progress(tqdm):  # type: ignore[misc,type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            if cancelled():
                raise InstallCancelledError("cancelled")
            budget.add(int(n or 0))
            on_bytes(int(n or 0))
            return None

    return _Progress


def download_hf_repo(
    source: HFSource,
    folder: Path,
    *,
    variant: str | None,
    token: str | None,
    on_total: Callable[[int], None],
    on_bytes: Callable[[int], None],
    cancelled: Callable[[], bool],
    endpoint: str | None = None,
    limits: DownloadLimits | None = None,
    revision: str | None = None,
) -> Path:
    """Download the selected files into ``folder`` (blocking; run it in a thread) and return the model root.

    ``endpoint`` is the hub to use (the caller checked it against the address policy); default ``HF_ENDPOINT``.
    ``limits`` bound the size of all selected files together and the time from this call on. ``revision`` (a branch,
    tag or commit; default the main branch) is resolved to one commit, from which every file is taken.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or None
    budget = _Budget(limits or DownloadLimits(), source.repo_id)
    sha, sizes = list_hf_repo(source.repo_id, token=token, endpoint=endpoint, revision=revision)
    files = select_files(sorted(sizes), source.subfolder, variant)
    if not files:
        where = f" under {source.subfolder!r}" if source.subfolder else ""
        raise ValueError(f"Hugging Face repo {source.repo_id!r} has no model files{where}")
    for name in files:
        _check_path(name)
    total = sum(sizes[f] for f in files)
    if total > budget.limits.max_bytes:
        raise budget.limits.too_large(f"{budget.what} ({len(files)} files)", total)
    on_total(total)
    progress = _progress_tqdm(on_bytes, cancelled, budget)
    for name in files:
        if cancelled():
            raise InstallCancelledError("cancelled")
        budget.check_time()
        try:
            hf_hub_download(
                source.repo_id,
                name,
                revision=sha,
                local_dir=folder,
                endpoint=endpoint,
                token=token,
                tqdm_class=progress,
            )
        except HfHubHTTPError as exc:
            raise ValueError(f"downloading {name} from {source.repo_id!r} failed: {exc}") from exc
    shutil.rmtree(folder / ".cache", ignore_errors=True)
    root = folder / source.subfolder if source.subfolder else folder
    # A repo (or subfolder) holding one weight file and nothing else is a single-file model.
    weights = [p for p in root.rglob("*") if p.is_file()]
    if len(weights) == 1 and weights[0].suffix in _WEIGHTS:
        return weights[0]
    return root


def list_hf_repo(
    repo_id: str, *, token: str | None, endpoint: str | None, revision: str | None = None
) -> tuple[str | None, dict[str, int]]:
    """The commit ``revision`` (default the main branch) names, and the repo's files with their sizes (blocking)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    where = f"{repo_id!r}" + (f" at revision {revision!r}" if revision else "")
    try:
        info = HfApi(endpoint=endpoint, token=token).model_info(repo_id, revision=revision, files_metadata=True)
    except RevisionNotFoundError as exc:
        raise ValueError(f"Hugging Face repo {repo_id!r} has no revision {revision!r}") from exc
    except RepositoryNotFoundError as exc:
        raise ValueError(f"Hugging Face repo {repo_id!r} was not found (or needs an access token)") from exc
    except HfHubHTTPError as exc:
        raise ValueError(f"Hugging Face could not list {where}: {exc}") from exc
    return info.sha, {s.rfilename: int(s.size or 0) for s in info.siblings or []}


def download_hf_file(
    repo_id: str,
    name: str,
    folder: Path,
    *,
    sha: str | None,
    size: int,
    token: str | None,
    on_bytes: Callable[[int], None],
    cancelled: Callable[[], bool],
    endpoint: str | None = None,
    limits: DownloadLimits | None = None,
) -> Path:
    """Download one repo file (``name``, listed by :func:`list_hf_repo` with ``size`` at commit ``sha``) into
    ``folder`` under its repo path, checked component by component, and return it (blocking)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    _check_path(name)
    budget = _Budget(limits or DownloadLimits(), repo_id)
    if size > budget.limits.max_bytes:
        raise budget.limits.too_large(f"{name} of {budget.what}", size)
    if cancelled():
        raise InstallCancelledError("cancelled")
    try:
        hf_hub_download(
            repo_id,
            name,
            revision=sha,
            local_dir=folder,
            endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None,
            token=token,
            tqdm_class=_progress_tqdm(on_bytes, cancelled, budget),
        )
    except HfHubHTTPError as exc:
        raise ValueError(f"downloading {name} from {repo_id!r} failed: {exc}") from exc
    shutil.rmtree(folder / ".cache", ignore_errors=True)
    return folder / name
