"""FLUX fixtures: tiny dev and schnell pipelines and standalone parts, built once per session; nothing from the hub."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.hub_offline import hub_offline  # noqa: F401 - autouse in this folder


@dataclass
class TinyFlux:
    root: Path
    dev: Path
    schnell: Path
    t5: Path
    clip: Path
    vae: Path
    sd1: Path


@pytest.fixture(scope="session")
def tiny_flux(tmp_path_factory: pytest.TempPathFactory) -> TinyFlux:
    from tests.flux.tiny_flux import build_flux_pipeline, build_parts, write_tokenizers
    from tests.generation.tiny_models import build_pipeline, write_tokenizer

    root = tmp_path_factory.mktemp("tiny-flux")
    tokenizers = write_tokenizers(root / "tokenizers")
    dev = build_flux_pipeline(root / "flux-dev", tokenizers, schnell=False, seed=1)
    schnell = build_flux_pipeline(root / "flux-schnell", tokenizers, schnell=True, seed=2)
    parts = build_parts(root, tokenizers)
    write_tokenizer(root / "tokenizers" / "sd1", pad_token="<|endoftext|>")
    write_tokenizer(root / "tokenizers" / "sd2", pad_token="!")
    sd1 = build_pipeline("sd1", root / "sd1", root / "tokenizers")
    return TinyFlux(root, dev, schnell, parts["t5"], parts["clip"], parts["vae"], sd1)
