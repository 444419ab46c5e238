"""Generation through our nodes vs the diffusers pipeline called directly, in the same run.

Builds an SD 1.5-architecture model and an SDXL one with random weights (full size, or tiny with
``--tiny``), saves them as diffusers folders, then for each: (a) ``StableDiffusion(XL)Pipeline``
directly and (b) the same generation through our nodes (model loader -> prompts -> noise -> denoise
-> decode) with the real model cache and loaders. Prints it/s for both, the overhead ratio, peak
VRAM, whether the warm second run reloaded anything, and the time to switch between two models that
both sit in the RAM cache.

    .venv/bin/python bench/generate.py            # on a GPU: 512x512 / 1024x1024, 30 steps, fp16
    .venv/bin/python bench/generate.py --tiny     # CPU smoke run of the whole script
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "generation"))  # the local tokenizer and the node test context

from gen_configs import DictLookup, TestModelConfig  # noqa: E402
from gen_context import GenContext, make_context  # noqa: E402
from tiny_models import build_pipeline, write_tokenizer  # noqa: E402

from invoke_host.model_cache import ModelCache  # noqa: E402

GB = 1024**3


def build_full(kind: str, folder: Path, tokenizers: Path) -> None:
    """A full-size SD 1.5 / SDXL architecture with random fp16 weights, saved as a diffusers folder."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(0)

    def text(hidden: int, layers: int, heads: int, proj: int | None = None) -> CLIPTextConfig:
        return CLIPTextConfig(vocab_size=49408, hidden_size=hidden, intermediate_size=hidden * 4,
                              num_hidden_layers=layers, num_attention_heads=heads, max_position_embeddings=77,
                              projection_dim=proj or hidden, bos_token_id=512, eos_token_id=513, pad_token_id=513,
                              hidden_act="quick_gelu" if hidden == 768 else "gelu")

    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), latent_channels=4, layers_per_block=2,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        sample_size=512 if kind == "sd1" else 1024,
                        scaling_factor=0.18215 if kind == "sd1" else 0.13025)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="leading", steps_offset=1)
    if kind == "sd1":
        from diffusers import StableDiffusionPipeline

        unet = UNet2DConditionModel(cross_attention_dim=768, attention_head_dim=8, sample_size=64)
        pipe: Any = StableDiffusionPipeline(
            vae=vae, text_encoder=CLIPTextModel(text(768, 12, 12)),
            tokenizer=CLIPTokenizer.from_pretrained(str(tokenizers / "sd1")), unet=unet, scheduler=scheduler,
            safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    else:
        from diffusers import StableDiffusionXLPipeline

        unet = UNet2DConditionModel(
            sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
            use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816)
        pipe = StableDiffusionXLPipeline(
            vae=vae, text_encoder=CLIPTextModel(text(768, 12, 12)),
            tokenizer=CLIPTokenizer.from_pretrained(str(tokenizers / "sd1")),
            text_encoder_2=CLIPTextModelWithProjection(text(1280, 32, 20, proj=1280)),
            tokenizer_2=CLIPTokenizer.from_pretrained(str(tokenizers / "sd2")), unet=unet, scheduler=scheduler)
    pipe.to(torch.float16).save_pretrained(str(folder), safe_serialization=True)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def run_direct(folder: Path, kind: str, device: str, dtype: Any, size: int, steps: int, prompt: str) -> float:
    """Seconds for one warm generation with the diffusers pipeline called directly."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if kind == "sdxl" else StableDiffusionPipeline
    pipe = cls.from_pretrained(str(folder), torch_dtype=dtype, local_files_only=True).to(device)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)

    def once() -> float:
        generator = torch.Generator("cpu").manual_seed(1)
        _sync(device)
        start = time.perf_counter()
        pipe(prompt, negative_prompt="", num_inference_steps=steps, guidance_scale=7.5, height=size, width=size,
             generator=generator)
        _sync(device)
        return time.perf_counter() - start

    once()  # warm-up: kernels, allocator
    seconds = min(once(), once())
    return seconds


def node_graph(ctx: GenContext, key: str, kind: str, size: int, steps: int, prompt: str) -> None:
    """model loader -> prompts -> noise -> denoise -> decode, node by node as the engine runs them."""
    from invoke_diffusers_nodes.denoise_node import DenoiseLatentsInvocation
    from invoke_diffusers_nodes.model_nodes import MainModelLoaderInvocation, SDXLModelLoaderInvocation
    from invoke_diffusers_nodes.noise_node import NoiseInvocation
    from invoke_diffusers_nodes.prompt_nodes import CompelInvocation, SDXLCompelPromptInvocation
    from invoke_diffusers_nodes.vae_nodes import LatentsToImageInvocation
    from invoke_sdk import ModelIdentifierField

    model = ModelIdentifierField(key=key)
    if kind == "sdxl":
        m = ctx.run(SDXLModelLoaderInvocation(model=model))
        sizes = {"original_width": size, "original_height": size, "target_width": size, "target_height": size}
        pos = ctx.run(SDXLCompelPromptInvocation(prompt=prompt, clip=m.clip, clip2=m.clip2, **sizes))
        neg = ctx.run(SDXLCompelPromptInvocation(prompt="", clip=m.clip, clip2=m.clip2, **sizes))
    else:
        m = ctx.run(MainModelLoaderInvocation(model=model))
        pos = ctx.run(CompelInvocation(prompt=prompt, clip=m.clip))
        neg = ctx.run(CompelInvocation(prompt="", clip=m.clip))
    noise = ctx.run(NoiseInvocation(seed=1, width=size, height=size))
    latents = ctx.run(DenoiseLatentsInvocation(
        positive_conditioning=pos.conditioning, negative_conditioning=neg.conditioning, noise=noise.noise,
        steps=steps, cfg_scale=7.5, scheduler="euler", unet=m.unet))
    ctx.run(LatentsToImageInvocation(latents=latents.latents, vae=m.vae))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny random models on the CPU (a smoke run)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--only", choices=["sd1", "sdxl"], default=None)
    parser.add_argument("--workdir", type=Path, default=None, help="where to build the models (default: a temp dir)")
    args = parser.parse_args()

    import torch

    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    steps = args.steps or (3 if args.tiny else 30)
    prompt = "a photograph of an astronaut riding a horse on the moon, highly detailed"
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-generate-"))
    write_tokenizer(work / "tokenizers" / "sd1", pad_token="<|endoftext|>")
    write_tokenizer(work / "tokenizers" / "sd2", pad_token="!")
    print(f"device={device} dtype={dtype} steps={steps} work={work}")

    kinds = [args.only] if args.only else ["sd1", "sdxl"]
    lookup = DictLookup()
    cache = ModelCache(ram_limit_bytes=64 * GB, vram_limit_bytes=70 * GB, device=device,
                       precision="float16" if device == "cuda" else "float32")
    ctx = make_context(lookup, cache)
    for kind in kinds:
        size = 64 if args.tiny else (512 if kind == "sd1" else 1024)
        folder = work / kind
        if not (folder / "model_index.json").is_file():
            start = time.perf_counter()
            build_pipeline(kind, folder, work / "tokenizers") if args.tiny else build_full(kind, folder,
                                                                                           work / "tokenizers")
            print(f"[{kind}] built random-weight model in {time.perf_counter() - start:.1f} s")
        lookup.add(TestModelConfig(key=kind, path=str(folder), type="main", format="diffusers",
                                   base={"sd1": "sd-1", "sdxl": "sdxl"}[kind], name=kind))

        direct = run_direct(folder, kind, device, dtype, size, steps, prompt)
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        node_graph(ctx, kind, kind, size, steps, prompt)  # cold: loads from disk into the cache
        _sync(device)
        cold = time.perf_counter() - start
        loads_after_cold = cache.stats().loads
        warm_runs = []
        for _ in range(2):
            _sync(device)
            start = time.perf_counter()
            node_graph(ctx, kind, kind, size, steps, prompt)
            _sync(device)
            warm_runs.append(time.perf_counter() - start)
        warm = min(warm_runs)
        reloaded = cache.stats().loads - loads_after_cold
        peak = torch.cuda.max_memory_allocated() / GB if device == "cuda" else float("nan")
        print(f"[{kind}] {size}x{size} {steps} steps")
        print(f"[{kind}]   diffusers direct : {direct:7.3f} s  {steps / direct:7.2f} it/s")
        print(f"[{kind}]   our nodes (warm) : {warm:7.3f} s  {steps / warm:7.2f} it/s")
        print(f"[{kind}]   overhead ratio   : {warm / direct:.3f}x ({(warm / direct - 1) * 100:+.1f} %)")
        print(f"[{kind}]   first run (cold, loading from disk): {cold:.3f} s")
        print(f"[{kind}]   warm runs reloaded {reloaded} models from disk")
        print(f"[{kind}]   peak VRAM (nodes): {peak:.2f} GiB")

    if len(kinds) == 2:
        # Both models are in RAM; make the device hold one at a time, then time handing each over.
        cache.vram_limit_bytes = max(e.size_bytes for e in cache.entries() if e.submodel == "unet") * 2
        handles = {k: [ctx.models.load(k, part) for part in ("unet", "text_encoder", "vae")] for k in kinds}
        for k in kinds:
            for h in handles[k]:
                with h:
                    pass
        loads_before = cache.stats().loads
        times = []
        for k in kinds * 2:
            _sync(device)
            start = time.perf_counter()
            for h in handles[k]:
                with h:
                    pass
            _sync(device)
            times.append((k, time.perf_counter() - start))
        print("switch between models in the RAM cache (unet + text encoder + vae onto the device):")
        for k, seconds in times:
            print(f"  to {k}: {seconds:.3f} s")
        print(f"  loads from disk during switching: {cache.stats().loads - loads_before}")


if __name__ == "__main__":
    main()
