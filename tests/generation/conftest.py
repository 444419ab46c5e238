"""Generation fixtures: tiny models built once per session under pytest's tmp dir; nothing from the hub."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from control_fixtures import control_files  # noqa: F401 - the ControlNet/adapter tests' session fixture
from gen_configs import DictLookup, TestModelConfig

from tests.hub_offline import hub_offline  # noqa: F401 - autouse in this folder

BASES = {"sd1": "sd-1", "sd2": "sd-2", "sdxl": "sdxl"}


@dataclass
class TinyModels:
    """Where the tiny models lie, and configs for them as the model manager would record them."""

    root: Path

    def folder(self, kind: str) -> TestModelConfig:
        return TestModelConfig(key=f"{kind}-folder", path=str(self.root / kind), type="main", format="diffusers",
                               base=BASES[kind], name=f"tiny {kind}")

    def lookup(self) -> DictLookup:
        return DictLookup([self.folder(k) for k in BASES])


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    from tiny_models import build_pipeline, write_tokenizer

    root = tmp_path_factory.mktemp("tiny-models")
    write_tokenizer(root / "tokenizers" / "sd1", pad_token="<|endoftext|>")
    write_tokenizer(root / "tokenizers" / "sd2", pad_token="!")
    for seed, kind in enumerate(BASES):
        build_pipeline(kind, root / kind, root / "tokenizers", seed=seed)
    return TinyModels(root)
