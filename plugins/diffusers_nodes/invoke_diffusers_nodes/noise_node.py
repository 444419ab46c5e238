"""Initial noise: made on the CPU from the seed, so one seed gives the same image on every device."""

from __future__ import annotations

from invoke_sdk import BaseInvocation, InputField, InvocationContext, LatentsField, invocation

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

    def invoke(self, context: InvocationContext) -> NoiseOutput:
        name = context.tensors.save(make_noise(self.seed, self.width, self.height))
        return NoiseOutput(noise=LatentsField(latents_name=name, seed=self.seed), width=self.width, height=self.height)
