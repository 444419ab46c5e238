"""InvokeAI's conditioning containers (what ``context.conditioning`` stores for its denoise nodes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BasicConditioningInfo", "ConditioningFieldData", "SDXLConditioningInfo"]


@dataclass
class BasicConditioningInfo:
    """Prompt embeddings."""

    embeds: Any

    def to(self, device: Any, dtype: Any = None) -> BasicConditioningInfo:
        self.embeds = self.embeds.to(device=device, dtype=dtype)
        return self


@dataclass
class SDXLConditioningInfo(BasicConditioningInfo):
    """SDXL prompt embeddings with the pooled embedding and the size conditioning."""

    pooled_embeds: Any = None
    add_time_ids: Any = None


@dataclass
class ConditioningFieldData:
    """The conditionings one ``ConditioningField`` names."""

    conditionings: list[Any] = field(default_factory=list)
