"""Model configs for generation tests: the fields the model manager's configs will have, as a dataclass.

The lead swaps this lookup for the model manager's record store; the loaders only read these fields.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TestModelConfig:
    """An installed model, as far as the loaders and the cache need to know."""

    __test__ = False  # not a test class, whatever its name says

    key: str
    path: str
    type: str
    format: str
    base: str
    name: str = ""
    variant: str | None = None
    prediction_type: str | None = None
    config_path: str | None = None


class DictLookup:
    """A config lookup backed by a dict (``KeyError`` for an unknown key), like the record store's ``get``."""

    def __init__(self, configs: list[TestModelConfig] | None = None) -> None:
        self.configs = {c.key: c for c in configs or []}

    def add(self, config: TestModelConfig) -> TestModelConfig:
        self.configs[config.key] = config
        return config

    def __call__(self, key: str) -> TestModelConfig:
        return self.configs[key]
