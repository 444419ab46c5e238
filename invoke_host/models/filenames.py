"""Names that come from outside (Content-Disposition, URL paths, repo file paths) reduced to one safe component."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["safe_filename"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._ +=@-]")


def safe_filename(name: str, fallback: str = "model") -> str:
    """One file-name component: no separators, no drive, no ``..``, no leading dot, at most 200 characters.

    ``..\\evil.py`` -> ``evil.py``, ``C:evil`` -> ``evil``, ``/etc/passwd`` -> ``passwd``.
    """
    name = unicodedata.normalize("NFKC", name).replace("\\", "/").split("/")[-1]
    name = name.split(":")[-1]  # Windows drive or alternate data stream
    name = _UNSAFE.sub("_", name).strip(" .")
    name = name.lstrip(".")[:200].strip(" .")
    return name or fallback
