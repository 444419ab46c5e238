"""Generation as a graph through our engine vs the diffusers pipeline called directly, in the same run.

Builds an SD 1.5-architecture model and an SDXL one with random weights (full size, or tiny with
``--tiny``), saves them as diffusers folders and installs them through the host's model manager.
Then for each: (a) ``StableDiffusion(XL)Pipeline`` directly and (b) the same generation as a graph
(model loader -> prompts -> noise -> denoise_latents) run by the real engine (``run_graph_async`` on a
started host: model records, registry loaders, the host's model cache, tensors on disk), followed by a
direct VAE decode to a PIL image through ``context.models``' handle. The graph stops before ``l2i``
because ``l2i`` also writes a PNG with its metadata and a thumbnail, which the pipeline does not do;
the decode after it is the same work as ``l2i`` without the save, so both sides do the same work.
Prints it/s for both, the overhead ratio, peak VRAM, whether
the warm second run reloaded anything, and the time to switch between two models that both sit in
the RAM cache. The ControlNet case (SD 1.5 with one ControlNet, issue 15) compares
``StableDiffusionControlNetPipeline`` with the same graph plus a ``controlnet`` node feeding ``denoise_latents``.
The FLUX case (``--only flux``; bench/flux_generate.py) compares ``FluxPipeline`` with our FLUX nodes.

    .venv/bin/python bench/generate.py            # on a GPU: 512x512 / 1024x1024, 30 steps, fp16
    .venv/bin/python bench/generate.py --tiny     # CPU smoke run of the whole script
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "generation"))  # the local tokenizer and the node test context

from control_models import build_controlnet  # noqa: E402
from gen_graphs import edge, txt2latents_graph  # noqa: E402
from tiny_models import build_pipeline, write_tokenizer  # noqa: E402

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


async def graph_run(host: Any, key: str, kind: str, size: int, steps: int, prompt: str) -> Any:
    """The generation as a graph through the engine, then the VAE decode ``l2i`` does (without its PNG save)."""
    import numpy as np
    import torch
    from PIL import Image

    from invoke_host.engine import run_graph_async

    graph = txt2latents_graph(key, sdxl=kind == "sdxl", seed=1, steps=steps, size=size, prompt=prompt,
                              cfg_scale=7.5, scheduler="euler")
    result = await run_graph_async(host, graph)
    if result.status != "completed":
        raise RuntimeError(f"the graph {result.status}: {[e.message for e in result.errors]}")
    services = host.node_services
    latents = services.tensors.load(result.output("denoise").latents.latents_name)

    def decode() -> Any:
        with services.models.load(key, "vae") as vae, torch.inference_mode():
            sample = vae.decode(latents.to(vae.device, vae.dtype) / vae.config.scaling_factor).sample
            pixels = ((sample[0] / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
            return Image.fromarray(np.ascontiguousarray(pixels.cpu().numpy()))

    return await asyncio.to_thread(decode)


async def install(host: Any, folder: Path, kind: str) -> str:
    """Install a built folder through the model manager (the overrides say what the random model is)."""
    job = host.models.installer.import_model(
        str(folder), config={"type": "main", "format": "diffusers", "base": {"sd1": "sd-1", "sdxl": "sdxl"}[kind],
                             "name": f"bench {kind}"})
    job = await host.models.installer.wait(job.id)
    if job.status.value != "completed":
        raise RuntimeError(f"installing {folder} failed: {job.error}")
    return str(job.config_out["key"])


def bench_host(work: Path, device: str) -> Any:
    import invoke_diffusers_nodes.plugin
    import invoke_local_file_storage.plugin
    import invoke_sd_probers.plugin
    import invoke_sqlite_storage.plugin

    from invoke_host.config import HostConfig
    from invoke_host.host import build_host

    config = HostConfig(root=work / "root", device=device, precision="float16" if device == "cuda" else "float32",
                        ram_cache_gb=64, vram_cache_gb=70)
    return build_host(config, [invoke_sd_probers.plugin, invoke_sqlite_storage.plugin, invoke_diffusers_nodes.plugin,
                               invoke_local_file_storage.plugin], entry_points=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny random models on the CPU (a smoke run)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--only", choices=["sd1", "sdxl", "flux"], default=None)
    parser.add_argument("--workdir", type=Path, default=None, help="where to build the models (default: a temp dir)")
    parser.add_argument("--no-controlnet", action="store_true", help="skip the SD 1.5 + ControlNet case")
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

    if args.only in (None, "flux"):  # FLUX.1 dev (#15): bench/flux_generate.py
        from flux_generate import run_flux

        run_flux(tiny=args.tiny, steps=args.steps, work=work / "flux")
        if args.only == "flux":
            return
    asyncio.run(run_all(args, device, dtype, steps, prompt, work))


async def run_all(args: Any, device: str, dtype: Any, steps: int, prompt: str, work: Path) -> None:
    host = bench_host(work, device)
    await host.start()
    try:
        await compare(host, args, device, dtype, steps, prompt, work)
    finally:
        await host.stop()


async def compare(host: Any, args: Any, device: str, dtype: Any, steps: int, prompt: str, work: Path) -> None:
    import torch

    kinds = [args.only] if args.only else ["sd1", "sdxl"]
    models = host.node_services.models
    cache = models.cache
    keys: dict[str, str] = {}
    for kind in kinds:
        size = 64 if args.tiny else (512 if kind == "sd1" else 1024)
        folder = work / kind
        if not (folder / "model_index.json").is_file():
            start = time.perf_counter()
            build_pipeline(kind, folder, work / "tokenizers") if args.tiny else build_full(kind, folder,
                                                                                           work / "tokenizers")
            print(f"[{kind}] built random-weight model in {time.perf_counter() - start:.1f} s")
        keys[kind] = key = await install(host, folder, kind)

        direct = run_direct(folder, kind, device, dtype, size, steps, prompt)
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        await graph_run(host, key, kind, size, steps, prompt)  # cold: loads from disk into the cache
        _sync(device)
        cold = time.perf_counter() - start
        loads_after_cold = cache.stats().loads
        warm_runs = []
        for _ in range(2):
            _sync(device)
            start = time.perf_counter()
            await graph_run(host, key, kind, size, steps, prompt)
            _sync(device)
            warm_runs.append(time.perf_counter() - start)
        warm = min(warm_runs)
        reloaded = cache.stats().loads - loads_after_cold
        peak = torch.cuda.max_memory_allocated() / GB if device == "cuda" else float("nan")
        print(f"[{kind}] {size}x{size} {steps} steps")
        print(f"[{kind}]   diffusers direct : {direct:7.3f} s  {steps / direct:7.2f} it/s")
        print(f"[{kind}]   our graph (warm) : {warm:7.3f} s  {steps / warm:7.2f} it/s")
        print(f"[{kind}]   overhead ratio   : {warm / direct:.3f}x ({(warm / direct - 1) * 100:+.1f} %)")
        print(f"[{kind}]   first run (cold, loading from disk): {cold:.3f} s")
        print(f"[{kind}]   warm runs reloaded {reloaded} models from disk")
        print(f"[{kind}]   peak VRAM (nodes): {peak:.2f} GiB")

    if "sd1" in kinds and not args.no_controlnet:
        await compare_controlnet(host, keys["sd1"], device, dtype, steps, prompt, work, tiny=args.tiny)

    if len(kinds) == 2:
        # Model handles look their config up in the records: off the event loop, like a node.
        await asyncio.to_thread(switch_models, models, keys, kinds, device)


def control_image(size: int) -> Any:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), "black")
    ImageDraw.Draw(image).ellipse((size // 5, size // 5, size * 4 // 5, size * 4 // 5), outline="white",
                                  width=max(1, size // 64))
    return image


def run_direct_controlnet(folder: Path, controlnet: Path, device: str, dtype: Any, size: int, steps: int,
                          prompt: str) -> float:
    """Seconds for one warm ``StableDiffusionControlNetPipeline`` generation."""
    import torch
    from diffusers import ControlNetModel, EulerDiscreteScheduler, StableDiffusionControlNetPipeline

    cn = ControlNetModel.from_pretrained(str(controlnet), torch_dtype=dtype, local_files_only=True)
    pipe = StableDiffusionControlNetPipeline.from_pretrained(
        str(folder), controlnet=cn, torch_dtype=dtype, local_files_only=True, safety_checker=None,
        requires_safety_checker=False).to(device)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    image = control_image(size)

    def once() -> float:
        generator = torch.Generator("cpu").manual_seed(1)
        _sync(device)
        start = time.perf_counter()
        pipe(prompt, image=image, negative_prompt="", num_inference_steps=steps, guidance_scale=7.5, height=size,
             width=size, generator=generator)
        _sync(device)
        return time.perf_counter() - start

    once()
    return min(once(), once())


async def compare_controlnet(host: Any, key: str, device: str, dtype: Any, steps: int, prompt: str, work: Path,
                             *, tiny: bool) -> None:
    """SD 1.5 + one ControlNet: the diffusers pipeline directly against our graph (with the VAE decode)."""
    size = 64 if tiny else 512
    folder = work / "controlnet"
    if not (folder / "config.json").is_file():
        start = time.perf_counter()
        build_controlnet(work / "sd1", folder, seed=7)
        print(f"[controlnet] built random-weight ControlNet in {time.perf_counter() - start:.1f} s")
    job = host.models.installer.import_model(
        str(folder), config={"type": "controlnet", "format": "diffusers", "base": "sd-1", "name": "bench cn"})
    job = await host.models.installer.wait(job.id)
    if job.status.value != "completed":
        raise RuntimeError(f"installing {folder} failed: {job.error}")
    record = await host.images.save(control_image(size))
    graph = txt2latents_graph(key, seed=1, steps=steps, size=size, prompt=prompt, cfg_scale=7.5, scheduler="euler")
    graph["nodes"]["cn"] = {"type": "controlnet", "image": {"image_name": record.image_name},
                            "control_model": {"key": job.config_out["key"]}}
    graph["edges"].append(edge("cn", "control", "denoise", "control"))

    from invoke_host.engine import run_graph_async

    async def once() -> float:
        _sync(device)
        start = time.perf_counter()
        result = await run_graph_async(host, graph)
        if result.status != "completed":
            raise RuntimeError(f"the ControlNet graph {result.status}: {[e.message for e in result.errors]}")
        latents = host.node_services.tensors.load(result.output("denoise").latents.latents_name)

        def decode() -> None:
            import torch

            with host.node_services.models.load(key, "vae") as vae, torch.inference_mode():
                vae.decode(latents.to(vae.device, vae.dtype) / vae.config.scaling_factor)

        await asyncio.to_thread(decode)
        _sync(device)
        return time.perf_counter() - start

    direct = run_direct_controlnet(work / "sd1", folder, device, dtype, size, steps, prompt)
    await once()  # cold: loads the ControlNet into the cache
    warm = min([await once(), await once()])
    print(f"[controlnet] sd1 + 1 ControlNet {size}x{size} {steps} steps")
    print(f"[controlnet]   diffusers direct : {direct:7.3f} s  {steps / direct:7.2f} it/s")
    print(f"[controlnet]   our graph (warm) : {warm:7.3f} s  {steps / warm:7.2f} it/s")
    print(f"[controlnet]   overhead ratio   : {warm / direct:.3f}x ({(warm / direct - 1) * 100:+.1f} %)")


def switch_models(models: Any, keys: dict[str, str], kinds: list[str], device: str) -> None:
    """Both models are in RAM; make the device hold one at a time, then time handing each over."""
    cache = models.cache
    cache.vram_limit_bytes = max(e.size_bytes for e in cache.entries() if e.submodel == "unet") * 2
    handles = {k: [models.load(keys[k], part) for part in ("unet", "text_encoder", "vae")] for k in kinds}
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
