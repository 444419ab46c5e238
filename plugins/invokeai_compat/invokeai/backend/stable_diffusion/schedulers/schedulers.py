"""InvokeAI's scheduler names (the values a ``scheduler`` input takes)."""

from __future__ import annotations

from typing import Literal

__all__ = ["SCHEDULER_NAME_VALUES"]

SCHEDULER_NAME_VALUES = Literal[
    "ddim", "ddpm", "deis", "deis_k", "lms", "lms_k", "pndm", "heun", "heun_k", "euler", "euler_k", "euler_a",
    "kdpm_2", "kdpm_2_k", "kdpm_2_a", "kdpm_2_a_k", "dpmpp_2s", "dpmpp_2s_k", "dpmpp_2m", "dpmpp_2m_k",
    "dpmpp_2m_sde", "dpmpp_2m_sde_k", "dpmpp_3m", "dpmpp_3m_k", "dpmpp_sde", "dpmpp_sde_k", "er_sde", "unipc",
    "unipc_k", "lcm", "tcd",
]
