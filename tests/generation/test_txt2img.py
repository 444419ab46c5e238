"""The diffusers nodes end to end on tiny models: txt2img for SD1, SD2 and SDXL, seeds, cancel, img2img, LoRA."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gen_context import GenContext, make_context
from invoke_diffusers_nodes.denoise_node import DenoiseLatentsInvocation
from invoke_diffusers_nodes.model_nodes import (
    LoRALoaderInvocation,
    MainModelLoaderInvocation,
    SDXLModelLoaderInvocation,
)
from invoke_diffusers_nodes.noise_node import NoiseInvocation
from invoke_diffusers_nodes.prompt_nodes import CompelInvocation, SDXLCompelPromptInvocation
from invoke_diffusers_nodes.vae_nodes import ImageToLatentsInvocation, LatentsToImageInvocation
from invoke_sdk import ModelIdentifierField
from invoke_sdk.cancellation import InvocationCanceledError

SIZE = 64
STEPS = 3


def _model(key: str) -> ModelIdentifierField:
    return ModelIdentifierField(key=key)


def _txt2img(ctx: GenContext, key: str, *, seed: int = 1, prompt: str = "a photo of a cat",
             scheduler: str = "euler", unet: Any = None, clip: Any = None, steps: int = STEPS,
             width: int = SIZE, height: int = SIZE) -> Any:
    sdxl = key.startswith("sdxl")
    loaded = ctx.run(SDXLModelLoaderInvocation(model=_model(key)) if sdxl
                     else MainModelLoaderInvocation(model=_model(key)))
    unet, clip = unet or loaded.unet, clip or loaded.clip
    if sdxl:
        pos = ctx.run(SDXLCompelPromptInvocation(prompt=prompt, clip=clip, clip2=loaded.clip2))
        neg = ctx.run(SDXLCompelPromptInvocation(prompt="", clip=clip, clip2=loaded.clip2))
    else:
        pos = ctx.run(CompelInvocation(prompt=prompt, clip=clip))
        neg = ctx.run(CompelInvocation(prompt="", clip=clip))
    noise = ctx.run(NoiseInvocation(seed=seed, width=width, height=height))
    latents = ctx.run(DenoiseLatentsInvocation(
        positive_conditioning=pos.conditioning, negative_conditioning=neg.conditioning, noise=noise.noise,
        steps=steps, cfg_scale=5.0, scheduler=scheduler, unet=unet,
    ))
    image = ctx.run(LatentsToImageInvocation(latents=latents.latents, vae=loaded.vae, metadata={"seed": seed}))
    return ctx.images.get_pil(image.image.image_name)


@pytest.mark.parametrize("kind", ["sd1", "sd2", "sdxl"])
def test_txt2img_makes_an_image_of_the_asked_size_with_a_preview_per_step(tiny_models: Any, kind: str) -> None:
    ctx = make_context(tiny_models.lookup())
    image = _txt2img(ctx, f"{kind}-folder", width=SIZE, height=SIZE + 16)
    assert image.size == (SIZE, SIZE + 16)
    assert np.asarray(image).std() > 0, "random weights still make a non-flat image"
    assert [round(p, 2) for _, p, _ in ctx.util.signals] == [round((i + 1) / STEPS, 2) for i in range(STEPS)]
    assert all(img.size == (SIZE // 8, (SIZE + 16) // 8) for _, _, img in ctx.util.signals)
    assert ctx.util.checks == STEPS, "cancellation is checked every step"
    assert list(ctx.images.metadata.values()) == [{"seed": 1}]


def test_same_seed_same_pixels_other_seed_other_pixels(tiny_models: Any) -> None:
    ctx = make_context(tiny_models.lookup())
    a = np.asarray(_txt2img(ctx, "sd1-folder", seed=7, scheduler="euler_a"))
    b = np.asarray(_txt2img(ctx, "sd1-folder", seed=7, scheduler="euler_a"))
    c = np.asarray(_txt2img(ctx, "sd1-folder", seed=8, scheduler="euler_a"))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert ctx.models.cache.stats().loads == 5, "the second and third run reuse the cached models"


def test_cancel_stops_inside_the_denoise_loop(tiny_models: Any) -> None:
    ctx = make_context(tiny_models.lookup())
    ctx.util.cancel_after = 2  # previews arrive one step late (they never stall the GPU)
    with pytest.raises(InvocationCanceledError, match="step 4 of 10"):
        _txt2img(ctx, "sd1-folder", steps=10)
    assert len(ctx.util.signals) == 2
    assert all(entry.locks == 0 for entry in ctx.models.cache.entries()), "cancel releases the model locks"


@pytest.mark.parametrize("scheduler", ["ddim", "dpmpp_2m", "euler", "lms", "pndm", "unipc", "dpmpp_2m_k"])
def test_every_scheduler_runs(tiny_models: Any, scheduler: str) -> None:
    ctx = make_context(tiny_models.lookup())
    assert _txt2img(ctx, "sd1-folder", scheduler=scheduler).size == (SIZE, SIZE)


def test_prompts_longer_than_77_tokens_are_encoded_in_chunks(tiny_models: Any) -> None:
    ctx = make_context(tiny_models.lookup())
    clip = ctx.run(MainModelLoaderInvocation(model=_model("sd1-folder"))).clip
    long_prompt = "a cat " * 40  # one token per non-space character in the tiny vocabulary: 160 tokens
    out = ctx.run(CompelInvocation(prompt=long_prompt, clip=clip))
    embeds = ctx.conditioning.load(out.conditioning.conditioning_name)["embeds"]
    assert embeds.shape[1] == 77 * 3
    short = ctx.conditioning.load(ctx.run(CompelInvocation(prompt=long_prompt[:60], clip=clip))
                                  .conditioning.conditioning_name)["embeds"]
    assert short.shape[1] == 77
    assert _txt2img(ctx, "sd1-folder", prompt=long_prompt).size == (SIZE, SIZE), "long vs short negative: padded"


def test_img2img_starts_from_the_image_and_a_later_start_changes_it_less(tiny_models: Any) -> None:
    ctx = make_context(tiny_models.lookup())
    loaded = ctx.run(MainModelLoaderInvocation(model=_model("sd1-folder")))
    source = _txt2img(ctx, "sd1-folder", seed=3)
    source_field = ctx.images.save(source)
    latents = ctx.run(ImageToLatentsInvocation(image=source_field, vae=loaded.vae))
    assert (latents.width, latents.height) == (SIZE, SIZE)
    pos = ctx.run(CompelInvocation(prompt="a dog", clip=loaded.clip))
    noise = ctx.run(NoiseInvocation(seed=4, width=SIZE, height=SIZE))
    source_latents = ctx.tensors.load(latents.latents.latents_name)

    def distance(start: float) -> float:
        out = ctx.run(DenoiseLatentsInvocation(
            positive_conditioning=pos.conditioning, negative_conditioning=pos.conditioning, noise=noise.noise,
            latents=latents.latents, steps=10, denoising_start=start, unet=loaded.unet, scheduler="ddim",
        ))
        return float((ctx.tensors.load(out.latents.latents_name) - source_latents).abs().mean())

    assert distance(0.8) < distance(0.3)


def test_a_lora_changes_the_output_and_unloading_it_restores_it(tiny_models: Any, tmp_path: Any) -> None:
    from tiny_models import write_lora

    lookup = tiny_models.lookup()
    ctx = make_context(lookup)
    plain = np.asarray(_txt2img(ctx, "sd1-folder", seed=5))
    for name, scale in (("lora-a", 1.0), ("lora-b", 2.0)):
        path = write_lora(tiny_models.root / "sd1", tmp_path / f"{name}.safetensors", seed=len(name) + int(scale))
        from gen_configs import TestModelConfig

        lookup.add(TestModelConfig(key=name, path=str(path), type="lora", format="lycoris", base="sd-1"))
    loaded = ctx.run(MainModelLoaderInvocation(model=_model("sd1-folder")))
    one = ctx.run(LoRALoaderInvocation(lora=_model("lora-a"), weight=1.0, unet=loaded.unet, clip=loaded.clip))
    two = ctx.run(LoRALoaderInvocation(lora=_model("lora-b"), weight=0.5, unet=one.unet, clip=one.clip))
    with_one = np.asarray(_txt2img(ctx, "sd1-folder", seed=5, unet=one.unet, clip=one.clip))
    with_two = np.asarray(_txt2img(ctx, "sd1-folder", seed=5, unet=two.unet, clip=two.clip))
    after = np.asarray(_txt2img(ctx, "sd1-folder", seed=5))
    assert not np.array_equal(plain, with_one)
    assert not np.array_equal(with_one, with_two)
    assert np.array_equal(plain, after), "the patches are removed when the node ends"
    with pytest.raises(ValueError, match="already applied"):
        ctx.run(LoRALoaderInvocation(lora=_model("lora-a"), unet=one.unet))
