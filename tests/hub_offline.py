"""An autouse fixture for the folders whose tests load models: nothing they do may reach the Hugging Face hub.

huggingface_hub reads HF_HUB_OFFLINE into a constant when it is imported, so the constant is patched too; a
process-wide environment variable would also break the model-install tests that talk to a local hub endpoint.
A folder's conftest imports it to make it autouse there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

__all__ = ["hub_offline"]


@pytest.fixture(autouse=True)
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt to reach the hub fails instead of downloading, in these tests only."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    yield
