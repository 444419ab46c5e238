"""The pickle loader's rules (invoke_host/models/pickle_safety.py), one test per rule, on real torch files.

Each test would fail if its rule were dropped: both load paths (zip and legacy), weights_only=True on each,
the scan before torch sees a file, parse and scanner failures as refusals (a truncated pickle in a zip
included), the legacy layout's five pickles, state_dict unwrapping and key flattening.
"""

from __future__ import annotations

import datetime
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytest

from invoke_host.models.pickle_safety import UnsafeModelError, pickle_format, read_pickle_tensors, scan_pickle
from tests.models import model_files as mf
from tests.models.test_probing import _Evil

torch = pytest.importorskip("torch")


def save(path: Path, obj: Any, *, legacy: bool = False) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def rewrite_member(src: Path, dest: Path, member_suffix: str, change: Any) -> Path:
    """A copy of the zip ``src`` whose member ending in ``member_suffix`` holds ``change(bytes)``."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dest, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            new.writestr(info, change(data) if info.filename.endswith(member_suffix) else data)
    return dest


def infos(found: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], str]]:
    return {k: (v.shape, v.dtype) for k, v in found.items()}


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_both_formats_load_to_names_shapes_and_dtypes(tmp_path: Path, legacy: bool) -> None:
    path = save(tmp_path / "m.pt", {"w": torch.zeros(2, 3), "b": torch.zeros(4, dtype=torch.float16)}, legacy=legacy)
    assert pickle_format(path) == ("legacy" if legacy else "zip")
    assert infos(read_pickle_tensors(path)) == {"w": ((2, 3), "float32"), "b": ((4,), "float16")}


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_weights_only_refuses_globals_the_scanner_lets_through(tmp_path: Path, legacy: bool) -> None:
    # picklescan calls datetime.date merely "suspicious"; only weights_only=True stands between it and loading.
    path = save(tmp_path / "d.pt", {"w": torch.zeros(1), "when": datetime.date(2020, 1, 1)}, legacy=legacy)
    scan_pickle(path)
    with pytest.raises(UnsafeModelError, match=r"^d\.pt: torch refused to load it safely \(Unsupported global: .*date"):
        read_pickle_tensors(path)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_dangerous_imports_are_refused_by_the_scan_before_torch(tmp_path: Path, legacy: bool) -> None:
    # In the legacy layout the object is the fourth pickle: every one of the five is scanned, not the first.
    path = save(tmp_path / "evil.pt", {"w": torch.zeros(1), "x": _Evil()}, legacy=legacy)
    message = r"^evil\.pt: the pickle imports dangerous code \(posix\.system\); it was not loaded"
    with pytest.raises(UnsafeModelError, match=message):
        scan_pickle(path)
    with pytest.raises(UnsafeModelError, match=message):
        read_pickle_tensors(path)


@pytest.mark.parametrize("keep", [2, 40, -1], ids=["cut before any global", "cut after a global", "last byte gone"])
def test_a_truncated_pickle_in_a_zip_is_refused(tmp_path: Path, keep: int) -> None:
    good = save(tmp_path / "good.pt", {"w": torch.zeros(2, 3)})
    cut = rewrite_member(good, tmp_path / "cut.pt", "data.pkl", lambda data: data[:keep])
    message = r"^cut\.pt: the pickle could not be parsed \(good/data\.pkl: .*\), so it cannot be scanned"
    with pytest.raises(UnsafeModelError, match=message):
        scan_pickle(cut)
    with pytest.raises(UnsafeModelError, match=message):
        read_pickle_tensors(cut)


def test_a_damaged_zip_member_is_refused(tmp_path: Path) -> None:
    raw = bytearray(save(tmp_path / "good.pt", {"w": torch.zeros(2, 3)}).read_bytes())
    at = raw.index(b"\x80\x02")  # the stored (uncompressed) data.pkl: change a byte, the CRC no longer matches
    raw[at + 1] = 3
    (tmp_path / "bad.pt").write_bytes(bytes(raw))
    with pytest.raises(UnsafeModelError, match=r"the zip archive cannot be read \(Bad CRC-32"):
        scan_pickle(tmp_path / "bad.pt")


@pytest.mark.parametrize("keep", [10, 200, 330], ids=["in the magic", "in the object", "in the storage keys"])
def test_a_truncated_legacy_pickle_is_refused(tmp_path: Path, keep: int) -> None:
    whole = save(tmp_path / "whole.pt", {"w": torch.zeros(2, 3)}, legacy=True).read_bytes()
    assert len(whole) > 340  # five pickles end at byte 346; the storage follows
    (tmp_path / "cut.pt").write_bytes(whole[:keep])
    with pytest.raises(UnsafeModelError, match=r"^cut\.pt: the pickle could not be parsed"):
        scan_pickle(tmp_path / "cut.pt")


def test_a_plain_pickle_must_end_where_its_pickle_ends(tmp_path: Path) -> None:
    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    scan_pickle(path)  # clean, and nothing after it
    path.write_bytes(pickle.dumps({"a": 1}, protocol=2) + pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(UnsafeModelError, match=r"data after the pickle, and it is not a torch checkpoint"):
        scan_pickle(path)


def test_a_pickle_whose_value_only_holds_the_torch_magic_is_not_a_torch_checkpoint(tmp_path: Path) -> None:
    # Only a pickle that *is* the magic number starts torch's legacy layout. This one is a tuple holding it: its
    # last opcode before STOP is TUPLE1, which has no argument; taking the argument of the opcode before it would
    # mistake the tuple for the magic and read what follows as torch's four further pickles.
    magic = 0x1950A86A20F9469CFC6C
    path = tmp_path / "t.pkl"
    as_tuple = pickle.dumps(magic, protocol=2)[:-1] + pickle.TUPLE1 + pickle.STOP  # no memo opcode after TUPLE1
    assert pickle.loads(as_tuple) == (magic,)
    path.write_bytes(as_tuple + b"".join(pickle.dumps(i, protocol=2) for i in range(4)))
    with pytest.raises(UnsafeModelError, match=r"data after the pickle, and it is not a torch checkpoint"):
        scan_pickle(path)


def test_a_scanner_failure_is_a_refusal(tmp_path: Path) -> None:
    path = tmp_path / "odd.pkl"
    path.write_bytes(b"\x80\x04\x93.")  # parses, but STACK_GLOBAL has nothing to name: picklescan raises
    with pytest.raises(UnsafeModelError, match=r"^odd\.pkl: the pickle could not be scanned \(Found 1 values"):
        read_pickle_tensors(path)


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_pickles_are_recognised_by_content_in_any_protocol(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "weights.safetensors"  # the name lies
    path.write_bytes(pickle.dumps({"x": _Evil()}, protocol=protocol))
    assert pickle_format(path) == "legacy"
    with pytest.raises(UnsafeModelError, match=r"dangerous code \(posix\.system\)"):
        scan_pickle(path)


def test_other_files_are_not_pickles(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps({"a": 1}))
    (tmp_path / "t.txt").write_text("a photo of a cat\n")
    mf.write_vae(tmp_path / "v.safetensors")
    for name in ["c.json", "t.txt", "v.safetensors"]:
        assert pickle_format(tmp_path / name) is None, name
        with pytest.raises(UnsafeModelError, match=r"not a pickle"):
            read_pickle_tensors(tmp_path / name)


def test_a_state_dict_wrapper_is_removed(tmp_path: Path) -> None:
    path = save(tmp_path / "c.pt", {"state_dict": {"w": torch.zeros(3)}, "ema": torch.zeros(1), "epoch": 7})
    assert infos(read_pickle_tensors(path)) == {"w": ((3,), "float32")}


def test_a_state_dict_that_is_not_a_mapping_stays_a_tensor(tmp_path: Path) -> None:
    path = save(tmp_path / "c.pt", {"state_dict": torch.zeros(2), "w": torch.zeros(1)})
    assert infos(read_pickle_tensors(path)) == {"state_dict": ((2,), "float32"), "w": ((1,), "float32")}


def test_nested_keys_are_flattened_with_dots(tmp_path: Path) -> None:
    nested = {
        "string_to_param": {"*": torch.zeros(2, 8)},
        "a": {"b": {"c": torch.zeros(1, dtype=torch.int64)}},
        3: torch.zeros(5),
        "name": "tok",
        "steps": 10,
        "listed": [torch.zeros(9)],
    }
    found = read_pickle_tensors(save(tmp_path / "n.pt", nested))
    assert infos(found) == {"string_to_param.*": ((2, 8), "float32"), "a.b.c": ((1,), "int64"), "3": ((5,), "float32")}
