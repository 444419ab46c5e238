"""The FLUX case of bench/generate.py: our FLUX nodes through the engine vs ``FluxPipeline`` called directly, and the
transformer's storage (bfloat16 vs float8 weights) by the bytes the model cache holds and the pixels it makes.

Both sides start from the same noise (``FluxPipeline`` takes our packed latents), so the images are compared too:
in float32 they should match to a pixel or two, which checks the packing, position ids, schedule and guidance.

    .venv/bin/python bench/flux_generate.py --tiny     # CPU: a small random FLUX dev (width 256, 2+2 blocks)
    .venv/bin/python bench/flux_generate.py            # GPU: FLUX.1's real widths, --blocks N double/single blocks
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.flux.tiny_flux import build_flux_pipeline, write_tokenizers  # noqa: E402

PROMPT = "a photograph of an astronaut riding a horse on the moon, highly detailed"
SEED = 1
GUIDANCE = 3.5


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def flux_host(work: Path, device: str, precision: str, storage: str) -> Any:
    import invoke_diffusers_nodes.plugin
    import invoke_local_file_storage.plugin
    import invoke_sd_probers.plugin
    import invoke_sqlite_storage.plugin

    from invoke_host.config import HostConfig
    from invoke_host.host import build_host

    root = Path(tempfile.mkdtemp(dir=work, prefix=f"root-{precision}-{storage}-"))  # a fresh model record store
    config = HostConfig(root=root, device=device, precision=precision,
                        flux_transformer_storage=storage, ram_cache_gb=64, vram_cache_gb=70)
    return build_host(config, [invoke_sd_probers.plugin, invoke_sqlite_storage.plugin, invoke_diffusers_nodes.plugin,
                               invoke_local_file_storage.plugin], entry_points=False)


def flux_graph(key: str, size: int, steps: int) -> dict[str, Any]:
    def edge(a: str, af: str, b: str, bf: str) -> dict[str, Any]:
        return {"source": {"node_id": a, "field": af}, "destination": {"node_id": b, "field": bf}}

    return {"id": "flux", "nodes": {
        "model": {"type": "flux_model_loader", "model": {"key": key}},
        "prompt": {"type": "flux_text_encoder", "prompt": PROMPT},
        "denoise": {"type": "flux_denoise", "width": size, "height": size, "num_steps": steps, "seed": SEED,
                    "guidance": GUIDANCE},
    }, "edges": [
        edge("model", "clip", "prompt", "clip"), edge("model", "t5_encoder", "prompt", "t5_encoder"),
        edge("model", "max_seq_len", "prompt", "t5_max_seq_len"),
        edge("model", "transformer", "denoise", "transformer"),
        edge("prompt", "conditioning", "denoise", "positive_text_conditioning"),
    ]}


async def install(host: Any, folder: Path) -> str:
    job = host.models.installer.import_model(str(folder), config={"name": "bench flux"})
    job = await host.models.installer.wait(job.id)
    if job.status.value != "completed":
        raise RuntimeError(f"installing {folder} failed: {job.error}")
    return str(job.config_out["key"])


async def graph_image(host: Any, key: str, size: int, steps: int) -> Any:
    """Our graph to latents, then the decode ``flux_vae_decode`` does (without its PNG save): an HxWx3 uint8 array."""
    import torch

    from invoke_host.engine import run_graph_async

    result = await run_graph_async(host, flux_graph(key, size, steps))
    if result.status != "completed":
        raise RuntimeError(f"the FLUX graph {result.status}: {[e.message for e in result.errors]}")
    services = host.node_services
    latents = services.tensors.load(result.output("denoise").latents.latents_name)

    def decode() -> Any:
        with services.models.load(key, "vae") as vae, torch.inference_mode():
            scaled = latents.to(vae.device, vae.dtype) / vae.config.scaling_factor + vae.config.shift_factor
            sample = vae.decode(scaled).sample
            return ((sample[0].float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu()

    return (await asyncio.to_thread(decode)).numpy()


def direct_pipeline(folder: Path, device: str, dtype: Any, size: int, steps: int) -> tuple[float, Any]:
    """(seconds for one warm ``FluxPipeline`` run, its image) from the same noise our node draws."""
    import numpy as np
    import torch
    from diffusers import FluxPipeline
    from invoke_diffusers_nodes.flux_sampling import LATENT_CHANNELS, latent_size, pack

    pipe = FluxPipeline.from_pretrained(str(folder), torch_dtype=dtype, local_files_only=True).to(device)
    pipe.set_progress_bar_config(disable=True)
    h, w = latent_size(size, size)
    noise = torch.randn((1, LATENT_CHANNELS, h, w), generator=torch.Generator("cpu").manual_seed(SEED))
    image: Any = None

    def once() -> float:
        nonlocal image
        _sync(device)
        start = time.perf_counter()
        out = pipe(PROMPT, height=size, width=size, num_inference_steps=steps, guidance_scale=GUIDANCE,
                   max_sequence_length=512, latents=pack(noise).to(device, dtype), output_type="np")
        _sync(device)
        image = (np.asarray(out.images[0]) * 255).round().astype(np.uint8)
        return time.perf_counter() - start

    # In a worker thread, as the engine runs nodes: on these shared CPUs a torch call from the main thread ran 5-9x
    # slower than the same call from another thread (measured 2026-12-01), which would flatter our side.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(once).result()
        seconds = min(pool.submit(once).result(), pool.submit(once).result())
    return seconds, image


async def compare(folder: Path, work: Path, device: str, precision: str, size: int, steps: int) -> None:
    import numpy as np
    import torch
    from invoke_diffusers_nodes.torch_support import torch_dtype

    host = flux_host(work, device, precision, "auto")
    await host.start()
    try:
        key = await install(host, folder)
        # The pipeline is told the dtype our loader picks for the transformer (bfloat16 where float16 was asked).
        from invoke_diffusers_nodes.flux_loaders import flux_compute_dtype

        dtype = torch_dtype(flux_compute_dtype(host.node_services.models.cache.dtype_for(_loader(host))))
        direct, direct_image = direct_pipeline(folder, device, dtype, size, steps)
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        await graph_image(host, key, size, steps)  # cold: loads every part into the cache
        runs = []
        for _ in range(2):
            _sync(device)
            start = time.perf_counter()
            ours = await graph_image(host, key, size, steps)
            _sync(device)
            runs.append(time.perf_counter() - start)
        warm = min(runs)
        diff = np.abs(ours.astype(np.int16) - direct_image.astype(np.int16))
        print(f"[flux] dev {size}x{size} {steps} steps, {dtype}")
        print(f"[flux]   FluxPipeline direct: {direct:7.3f} s  {steps / direct:7.2f} it/s")
        print(f"[flux]   our graph (warm)   : {warm:7.3f} s  {steps / warm:7.2f} it/s")
        print(f"[flux]   overhead ratio     : {warm / direct:.3f}x ({(warm / direct - 1) * 100:+.1f} %)")
        print(f"[flux]   pixels vs the pipeline: max |diff| {int(diff.max())}, mean {diff.mean():.3f} (0-255)")
        if device == "cuda":
            print(f"[flux]   peak VRAM (nodes)  : {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    finally:
        await host.stop()


def _loader(host: Any) -> Any:
    registered = host.registry.kind("model_loaders")["main/diffusers"]
    return getattr(registered, "value", registered)


async def storage(folder: Path, work: Path, device: str, size: int, steps: int) -> None:
    """bfloat16 vs float8 transformer weights, both computing in bfloat16: bytes in the cache, pixel difference."""
    import numpy as np

    results: dict[str, tuple[int, Any]] = {}
    for kind in ("bfloat16", "float8"):
        host = flux_host(work, device, "bfloat16", kind)
        await host.start()
        try:
            key = await install(host, folder)
            image = await graph_image(host, key, size, steps)
            [entry] = [e for e in host.node_services.models.cache.entries() if e.submodel == "transformer"]
            results[kind] = (entry.size_bytes, image)
        finally:
            await host.stop()
    (b16, img16), (b8, img8) = results["bfloat16"], results["float8"]
    diff = np.abs(img8.astype(np.int16) - img16.astype(np.int16))
    print(f"[flux storage] transformer in the cache: bfloat16 {b16 / 1e6:.2f} MB, float8 {b8 / 1e6:.2f} MB "
          f"({b8 / b16:.3f}x)")
    print(f"[flux storage] pixels float8 vs bfloat16: mean |diff| {diff.mean():.2f}, max {int(diff.max())}, "
          f"PSNR {_psnr(img8, img16):.1f} dB")


def _psnr(a: Any, b: Any) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def run_flux(*, tiny: bool, steps: int | None, work: Path, blocks: int = 19) -> None:
    """Build (once per work dir) and compare; bench/generate.py calls this for its FLUX case."""
    import torch

    device = "cuda" if torch.cuda.is_available() and not tiny else "cpu"
    steps = steps or (4 if tiny else 28)
    size = 128 if tiny else 1024
    folder = work / "flux-dev"
    if not (folder / "model_index.json").is_file():
        start = time.perf_counter()
        tokenizers = write_tokenizers(work / "tokenizers")
        width, layers = (256, 2) if tiny else (3072, blocks)
        build_flux_pipeline(folder, tokenizers, schnell=False, seed=3, width=width, layers=layers)
        print(f"[flux] built random-weight FLUX dev in {time.perf_counter() - start:.1f} s")
    precision = "float32" if device == "cpu" else "float16"
    print(f"[flux] device={device} precision={precision} steps={steps} size={size} work={work}")
    asyncio.run(compare(folder, work, device, precision, size, steps))
    asyncio.run(storage(folder, work, device, size, steps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a small random FLUX dev on the CPU")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--blocks", type=int, default=19, help="double and single blocks of the GPU model")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-flux-"))
    run_flux(tiny=args.tiny, steps=args.steps, work=work, blocks=args.blocks)


if __name__ == "__main__":
    main()
