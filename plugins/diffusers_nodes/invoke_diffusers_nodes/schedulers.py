"""The schedulers a user can pick, by InvokeAI's names."""

from __future__ import annotations

from typing import Any, Literal, get_args

__all__ = ["SCHEDULER_NAMES", "SchedulerName", "make_scheduler"]

SchedulerName = Literal[
    "ddim", "dpmpp_2m", "dpmpp_2m_k", "euler", "euler_k", "euler_a", "lms", "lms_k", "pndm", "unipc", "unipc_k"
]
SCHEDULER_NAMES: tuple[str, ...] = get_args(SchedulerName)

# name -> (diffusers class name, config overrides)
_SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmpp_2m_k": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_k": ("EulerDiscreteScheduler", {"use_karras_sigmas": True}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "lms_k": ("LMSDiscreteScheduler", {"use_karras_sigmas": True}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "unipc_k": ("UniPCMultistepScheduler", {"use_karras_sigmas": True}),
}


def make_scheduler(name: str, model_scheduler_config: Any) -> Any:
    """A fresh scheduler of the chosen kind, built from the model's own scheduler config (betas, prediction type)."""
    import diffusers

    class_name, overrides = _SCHEDULERS[name]
    config = dict(model_scheduler_config)
    # Keys of the model's original scheduler class that the chosen class does not know are ignored by from_config.
    return getattr(diffusers, class_name).from_config({**config, **overrides})
