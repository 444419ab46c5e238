"""Pickle checkpoints: every pickle torch would unpickle is parsed in full and scanned with picklescan
before anything touches the file, then read with ``torch.load(weights_only=True)``.

The rules, each pinned by ``tests/models/test_pickle_loader.py``:

- A pickle is recognised by content, whatever its name: a zip archive (``torch.save``), or a stream whose
  first pickle parses to its STOP opcode (any protocol, 0 included).
- Zip: every ``*.pkl`` member (what ``torch.load`` unpickles) must read back intact and parse in full.
  Other members are raw tensor storage, which is never unpickled.
- Legacy (not zip): when the first pickle is torch's magic number, the four pickles ``torch.load`` reads
  after it must each parse in full (raw storage follows them); any other stream must be one pickle and
  nothing after it.
- Each of those pickles is handed, exactly, to picklescan: a dangerous import or a scanner failure refuses
  the file. A stream that does not parse cannot be scanned, so it is refused too.
- Loading uses ``weights_only=True`` on both formats; whatever torch raises becomes
  :class:`UnsafeModelError`.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Literal

from invoke_sdk.models.probing import TensorInfo

__all__ = ["PickleFormat", "UnsafeModelError", "pickle_format", "read_pickle_tensors", "scan_pickle"]

logger = logging.getLogger("invoke_host.models")

PickleFormat = Literal["zip", "legacy"]

_ZIP_MAGIC = b"PK\x03\x04"
_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
"""What ``torch.save(..., _use_new_zipfile_serialization=False)`` pickles first."""
_TORCH_LEGACY_PICKLES = 5
"""magic number, protocol version, system info, the object, the storage keys; raw storage follows."""


class UnsafeModelError(ValueError):
    """A model file the host refuses to touch (dangerous pickle imports, or a pickle it cannot scan)."""


class _UnparseableError(Exception):
    """A stream that pickletools cannot take apart to its STOP opcode."""


def _one_pickle(fh: IO[bytes]) -> tuple[bytes, Any]:
    """The bytes of the pickle starting at the current position, read to its STOP, and the last opcode argument
    before STOP (the value of a pickle that is a bare constant, such as torch's magic number)."""
    import pickletools  # here, not at import: it builds its opcode tables (4 ms) on every start; only scans use it

    start = fh.tell()
    last: Any = None
    try:
        # genops ends at STOP and raises on anything else, a stream that runs out before STOP included.
        for op, arg, _pos in pickletools.genops(fh):
            if op.name != "STOP":
                last = arg
    except Exception as exc:  # noqa: BLE001 - any parse failure means "cannot be scanned"
        raise _UnparseableError(str(exc)) from None
    end = fh.tell()
    fh.seek(start)
    return fh.read(end - start), last


def pickle_format(path: Path) -> PickleFormat | None:
    """``zip`` or ``legacy`` when ``path`` holds a pickle checkpoint by content, else ``None``."""
    with path.open("rb") as fh:
        if fh.read(4) == _ZIP_MAGIC:
            return "zip"
        fh.seek(0)
        try:
            _one_pickle(fh)
        except _UnparseableError:
            return None
    return "legacy"


def _legacy_pickles(path: Path) -> list[bytes]:
    with path.open("rb") as fh:
        data, value = _one_pickle(fh)
        found = [data]
        if value == _TORCH_MAGIC:
            for _ in range(_TORCH_LEGACY_PICKLES - 1):
                found.append(_one_pickle(fh)[0])
        elif fh.read(1):
            raise _UnparseableError("there is data after the pickle, and it is not a torch checkpoint")
    return found


def _zip_pickles(path: Path) -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".pkl"):
                    raw = archive.read(info)  # checks the CRC: a damaged member raises
                    try:
                        found.append((info.filename, _one_pickle(io.BytesIO(raw))[0]))
                    except _UnparseableError as exc:
                        raise _UnparseableError(f"{info.filename}: {exc}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as exc:
        raise _UnparseableError(f"the zip archive cannot be read ({exc})") from None
    return found


def scan_pickle(path: Path, label: str | None = None) -> None:
    """Raise :class:`UnsafeModelError` unless every pickle ``torch.load`` would read parses and scans clean.

    ``label`` names the file in messages (a path inside a model folder); the file name by default.
    """
    from picklescan.scanner import scan_pickle_bytes

    name = label or path.name
    fmt = pickle_format(path)
    if fmt is None:
        raise UnsafeModelError(f"{name}: the pickle could not be parsed, so it cannot be scanned; refusing it")
    try:
        pickles = _zip_pickles(path) if fmt == "zip" else [(name, p) for p in _legacy_pickles(path)]
    except _UnparseableError as exc:
        raise UnsafeModelError(
            f"{name}: the pickle could not be parsed ({exc}), so it cannot be scanned; refusing it"
        ) from None
    flagged = False
    dangerous: set[str] = set()
    for member, data in pickles:
        try:
            result = scan_pickle_bytes(io.BytesIO(data), member, multiple_pickles=False)
        except Exception as exc:
            raise UnsafeModelError(f"{name}: the pickle could not be scanned ({exc}); refusing to load it") from exc
        if result.scan_err or result.infected_files or result.issues_count:
            flagged = True
            dangerous |= {f"{g.module}.{g.name}" for g in result.globals if g.safety.value == "dangerous"}
    if flagged:
        shown = ", ".join(sorted(dangerous)) or "unsafe globals"
        raise UnsafeModelError(
            f"{name}: the pickle imports dangerous code ({shown}); it was not loaded. "
            "Use a .safetensors version of this model."
        )


def _reason(exc: Exception) -> str:
    # torch's weights-only refusal is a page of advice; the line that says what it refused is enough here.
    text = str(exc)
    _, marker, rest = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in (rest if marker else text).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _flatten(prefix: str, value: Any, out: dict[str, TensorInfo]) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        out[prefix] = TensorInfo(shape=tuple(value.shape), dtype=str(value.dtype).removeprefix("torch."))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)


def read_pickle_tensors(path: Path) -> dict[str, TensorInfo]:
    """Tensor names and shapes of a pickle checkpoint: scanned first, loaded with ``weights_only=True``.

    Nested dicts are flattened with dots; a top-level ``state_dict`` wrapper is removed.
    """
    fmt = pickle_format(path)
    if fmt is None:
        raise UnsafeModelError(f"{path.name}: not a pickle")
    scan_pickle(path)
    try:
        import torch
    except ImportError as exc:
        raise UnsafeModelError(f"{path.name}: reading legacy pickle checkpoints needs torch installed") from exc
    try:
        # mmap keeps zip-format checkpoints from being read into memory; the legacy format cannot be mapped.
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=fmt == "zip")
    except Exception as exc:
        raise UnsafeModelError(f"{path.name}: torch refused to load it safely ({_reason(exc)})") from exc
    if isinstance(data, Mapping) and isinstance(data.get("state_dict"), Mapping):
        data = data["state_dict"]
    out: dict[str, TensorInfo] = {}
    _flatten("", data, out)
    return out
