"""Initial noise: made on the CPU from the seed, so one seed gives the same image on every device."""

from __future__ import annotations

from invoke_sdk import BaseInvocation, InputField, InvocationContext, LatentsField, invocation
from invoke_sdk.limits import check_limit
from pydantic import ValidationInfo, model_validator

from invoke_diffusers_nodes.outputs import NoiseOutput

__all__ = ["LATENT_CHANNELS", "LATENT_SCALE", "NoiseInvocation", "make_noise"]

LATENT_SCALE = 8
LATENT_CHANNELS = 4
SEED_MAX = 2**32 - 1


def make_noise(seed: int, width: int, height: int) -> object:
    """Standard normal noise ``(1, 4, height / 8, width / 8)`` in float32 on the CPU."""
    import torch

    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(
        (1, LATENT_CHANNELS, height // LATENT_SCALE, width // LATENT_SCALE), generator=generator, dtype=torch.float32
    )


@invocation("noise", title="Create Latent Noise", tags=["latents", "noise"], category="latents", version="1.0.0")
class NoiseInvocation(BaseInvocation):
    """Generates latent noise from a seed."""

    seed: int = InputField(default=0, ge=0, le=SEED_MAX, description="Seed for random number generation")
    width: int = InputField(default=512, multiple_of=LATENT_SCALE, gt=0, description="Width of output (px)")
    height: int = InputField(default=512, multiple_of=LATENT_SCALE, gt=0, description="Height of output (px)")
    use_cpu: bool = InputField(
        default=True, description="Kept for InvokeAI graphs: noise is always made on the CPU, so it is reproducible"
    )

    @model_validator(mode="after")
    def _pixels_within_limit(self, info: ValidationInfo) -> NoiseInvocation:
        self._check_pixels(info.context)
        return self

    def _check_pixels(self, settings: object) -> None:
        # The latents (and every image made from them) follow this size: refuse a huge one before allocating it.
        check_limit(self.width * self.height, "max_image_pixels", settings,
                    f"the pixel count of {self.width}x{self.height} noise")

    def invoke(self, context: InvocationContext) -> NoiseOutput:
        self._check_pixels(context.config)
        name = context.tensors.save(make_noise(self.seed, self.width, self.height))
        return NoiseOutput(noise=LatentsField(latents_name=name, seed=self.seed), width=self.width, height=self.height)
