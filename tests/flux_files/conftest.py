"""FLUX single-file tests: nothing may reach the hub (the loaders ship their configs)."""

from __future__ import annotations

from tests.hub_offline import hub_offline  # noqa: F401 - autouse in this folder


