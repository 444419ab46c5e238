"""What a node may ask the download cache for: an http(s) URL or a Hugging Face repo, and the cache key of each.

Repo sources are written as InvokeAI writes them (its packs pass them unchanged): ``owner/name`` (the repo's model
files), ``owner/name::path/in/repo`` (one file or subfolder), ``owner/name:fp16`` and ``owner/name:fp16:path`` (a
variant's weights). Repo paths are checked component by component here, before anything touches the disk.

The key is a hash of the normalised source and the revision, so a cache entry's folder name never comes from
outside text; only the one file name a URL download keeps (reduced by ``safe_filename``) and repo paths (checked
here) do, and only inside the entry's own folder.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from invoke_host.models.filenames import safe_filename

__all__ = ["CacheSource", "RepoSource", "UrlSource", "parse_cache_source"]

# InvokeAI's own form: owner/name[:variant[:path]], the variant possibly empty (owner/name::path).
_REPO = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?::(?P<variant>\w*)(?::(?P<path>.+))?)?$")
_VARIANTS = frozenset({"fp16", "fp32", "bf16", "onnx", "openvino", "flax"})


@dataclass(frozen=True)
class UrlSource:
    """One file at an http(s) URL."""

    url: str

    @property
    def key(self) -> str:
        return _digest(f"url\n{self.url}")

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class RepoSource:
    """A Hugging Face repo, or one file or subfolder of it (``path``), at ``revision`` (None: the main branch)."""

    repo_id: str
    path: str | None
    variant: str | None
    revision: str | None

    @property
    def key(self) -> str:
        return _digest(f"hf\n{self.repo_id}\n{self.variant or ''}\n{self.path or ''}\n{self.revision or 'main'}")

    def __str__(self) -> str:
        text = self.repo_id + (f":{self.variant}" if self.variant else "") + (f"::{self.path}" if self.path else "")
        return text + (f" (revision {self.revision})" if self.revision else "")


CacheSource = UrlSource | RepoSource


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _check_repo_path(path: str, source: str) -> str:
    """A repo path made only of safe components (no ``..``, no absolute path, nothing ``safe_filename`` changes)."""
    # InvokeAI accepts owner/name::/file (one leading slash, still relative to the repo's root).
    cleaned = path[1:] if path.startswith("/") else path
    parts = PurePosixPath(cleaned).parts
    if (
        not parts
        or cleaned.startswith("/")
        or "\\" in cleaned
        or "%" in cleaned
        or any(part != safe_filename(part, fallback="") for part in parts)
    ):
        raise ValueError(
            f"{source!r} names the repo path {path!r}, which is not a plain relative path inside the repo "
            "(no '..', no absolute or encoded paths)"
        )
    return "/".join(parts)


def parse_cache_source(source: str, revision: str | None = None) -> CacheSource:
    """The source ``source`` names; ``ValueError`` with the accepted forms when it is neither a URL nor a repo."""
    text = source.strip().strip('"')
    if not text:
        raise ValueError("the model source is empty: give an http(s) URL or a Hugging Face repo id like owner/name")
    if revision is not None and (not revision.strip() or any(c in revision for c in "\n\r\0")):
        raise ValueError(f"the revision {revision!r} is not a branch, tag or commit name")
    scheme = urlsplit(text).scheme.lower()
    if scheme in ("http", "https"):
        if revision is not None:
            raise ValueError(f"a revision applies to a Hugging Face repo, not to the URL {text!r}")
        if not urlsplit(text).hostname:
            raise ValueError(f"the URL {text!r} names no host")
        return UrlSource(text)
    if "://" in text:
        raise ValueError(f"only http and https URLs can be downloaded, not {text!r}")
    match = _REPO.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is neither an http(s) URL nor a Hugging Face repo source (owner/name, owner/name::path/in/repo, "
            "owner/name:fp16:path)"
        )
    variant = match.group("variant") or None
    if variant is not None and variant not in _VARIANTS:
        raise ValueError(
            f"{text!r} names the variant {variant!r}; the variants are {', '.join(sorted(_VARIANTS))} "
            "(a path inside the repo goes after '::')"
        )
    path = match.group("path")
    return RepoSource(
        repo_id=match.group("repo"),
        path=_check_repo_path(path, text) if path is not None else None,
        variant=variant,
        revision=revision.strip() if revision is not None else None,
    )
