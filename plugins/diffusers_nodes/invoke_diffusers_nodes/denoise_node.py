"""Denoise latents: the sampling loop, with classifier-free guidance, img2img ranges, progress and cancel."""

from __future__ import annotations

import inspect
from contextlib import ExitStack
from typing import Any

from invoke_sdk import BaseInvocation, ConditioningField, Input, InputField, InvocationContext, LatentsField, invocation
from invoke_sdk.cancellation import InvocationCanceledError

from invoke_diffusers_nodes.control_fields import ControlField, IPAdapterField, T2IAdapterField
from invoke_diffusers_nodes.control_guidance import denoise_extras
from invoke_diffusers_nodes.denoise_mask import DenoiseMaskField
from invoke_diffusers_nodes.generation_metadata import denoise_metadata
from invoke_diffusers_nodes.inpaint_blend import InpaintBlend
from invoke_diffusers_nodes.lora_patch import patched_with_loras
from invoke_diffusers_nodes.model_fields import UNetField
from invoke_diffusers_nodes.noise_node import LATENT_SCALE
from invoke_diffusers_nodes.outputs import LatentsOutput
from invoke_diffusers_nodes.previews import PreviewMaker
from invoke_diffusers_nodes.schedulers import SchedulerName, make_scheduler

__all__ = ["DenoiseLatentsInvocation", "trim_timesteps"]


def trim_timesteps(scheduler: Any, steps: int, start: float, end: float) -> tuple[Any, int]:
    """The timesteps between ``denoising_start`` and ``denoising_end`` (fractions of the schedule).

    Returns them with the index of the first one in the full schedule.
    """
    timesteps = scheduler.timesteps
    total = scheduler.config.num_train_timesteps
    t_start = round(total * (1 - start))
    t_end = round(total * (1 - end))
    first = int((timesteps >= t_start).sum()) if start > 0 else 0
    last = int((timesteps >= t_end).sum()) if end < 1 else len(timesteps)
    return timesteps[first:last], first


def _pad_to(embeds: Any, pad: Any, length: int) -> Any:
    import torch

    while embeds.shape[1] < length:
        embeds = torch.cat([embeds, pad], dim=1)
    return embeds


@invocation(
    "denoise_latents",
    title="Denoise - SD1.5, SDXL",
    tags=["latents", "denoise", "txt2img", "t2i", "t2l", "img2img", "i2i", "l2l"],
    category="latents",
    version="1.0.0",
)
class DenoiseLatentsInvocation(BaseInvocation):
    """Denoises noisy latents to decodable images."""

    positive_conditioning: ConditioningField = InputField(
        description="Positive conditioning tensor", input=Input.Connection, ui_order=0
    )
    negative_conditioning: ConditioningField = InputField(
        description="Negative conditioning tensor", input=Input.Connection, ui_order=1
    )
    noise: LatentsField | None = InputField(default=None, description="Noise tensor", input=Input.Connection,
                                             ui_order=3)
    steps: int = InputField(default=10, gt=0, description="Number of steps to run")
    cfg_scale: float = InputField(default=7.5, ge=1, description="Classifier-Free Guidance scale", title="CFG Scale")
    denoising_start: float = InputField(default=0.0, ge=0, le=1, description="When to start denoising, 0 to 1")
    denoising_end: float = InputField(default=1.0, ge=0, le=1, description="When to stop denoising, 0 to 1")
    scheduler: SchedulerName = InputField(default="euler", description="Scheduler to use during inference")
    unet: UNetField = InputField(description="UNet (scheduler, LoRAs)", input=Input.Connection, title="UNet",
                                 ui_order=2)
    cfg_rescale_multiplier: float = InputField(default=0, ge=0, lt=1, title="CFG Rescale Multiplier",
                                               description="Rescale multiplier for CFG guidance")
    latents: LatentsField | None = InputField(default=None, description="Latents tensor", input=Input.Connection,
                                               ui_order=4)
    # --- ControlNet / T2I-Adapter / IP-Adapter inputs (issue 15, applied by control_guidance.py) ---
    control: ControlField | list[ControlField] | None = InputField(
        default=None, input=Input.Connection, ui_order=5, description="ControlNet(s) to apply")
    ip_adapter: IPAdapterField | list[IPAdapterField] | None = InputField(
        default=None, input=Input.Connection, ui_order=6, title="IP-Adapter", description="IP-Adapter to apply")
    t2i_adapter: T2IAdapterField | list[T2IAdapterField] | None = InputField(
        default=None, input=Input.Connection, ui_order=7, title="T2I-Adapter", description="T2I-Adapter(s) to apply")
    # --- end of the ControlNet / adapter inputs ---
    denoise_mask: DenoiseMaskField | None = InputField(
        default=None, description="A mask of the region to apply the denoising process to. Values of 0.0 represent "
        "the regions to be fully denoised, and 1.0 represent the regions to be preserved.",
        input=Input.Connection, ui_order=8)

    def invoke(self, context: InvocationContext) -> LatentsOutput:
        import torch

        if self.noise is None and self.latents is None:
            raise ValueError("denoise_latents needs noise, latents or both: connect a noise node for txt2img")
        if self.denoising_start >= self.denoising_end:
            raise ValueError(
                f"denoising_start ({self.denoising_start}) must be below denoising_end ({self.denoising_end})"
            )
        noise = context.tensors.load(self.noise.latents_name) if self.noise is not None else None
        latents = context.tensors.load(self.latents.latents_name) if self.latents is not None else None
        if latents is None and self.denoising_start > 0:
            raise ValueError("denoising_start above 0 is img2img: connect the latents of the starting image")
        positive = context.conditioning.load(self.positive_conditioning.conditioning_name)
        negative = context.conditioning.load(self.negative_conditioning.conditioning_name)
        sdxl = "pooled_embeds" in positive
        seed = (self.noise.seed if self.noise is not None else None) or 0

        with context.models.load(self.unet.scheduler) as model_scheduler:
            scheduler = make_scheduler(self.scheduler, model_scheduler.config)

        unet_handle = context.models.load(self.unet.unet)
        with ExitStack() as stack:
            loras = [(stack.enter_context(context.models.load(lora.lora)), lora.weight, lora.lora.key)
                     for lora in self.unet.loras]
            unet = stack.enter_context(unet_handle)
            stack.enter_context(patched_with_loras(unet, "unet", loras))
            stack.enter_context(torch.inference_mode())
            device, dtype = unet.device, unet.dtype

            length = max(positive["embeds"].shape[1], negative["embeds"].shape[1])
            text = torch.cat([
                _pad_to(negative["embeds"], negative["pad"], length),
                _pad_to(positive["embeds"], positive["pad"], length),
            ]).to(device=device, dtype=dtype)
            added: dict[str, Any] | None = None
            if sdxl:
                added = {
                    "text_embeds": torch.cat([negative["pooled_embeds"], positive["pooled_embeds"]]).to(device, dtype),
                    "time_ids": torch.cat([negative["add_time_ids"], positive["add_time_ids"]]).to(device, dtype),
                }

            scheduler.set_timesteps(self.steps, device=device)
            timesteps, first = trim_timesteps(scheduler, self.steps, self.denoising_start, self.denoising_end)
            if hasattr(scheduler, "set_begin_index"):
                scheduler.set_begin_index(first)
            # --- inpainting (inpaint_blend.py): None without a mask on a normal model ---
            inpaint = InpaintBlend.start(context, self.denoise_mask, unet=unet, latents=latents, noise=noise,
                                         seed=seed, scheduler=scheduler)
            # --- end inpainting ---
            if latents is None:
                latents = noise.to(device=device, dtype=torch.float32) * scheduler.init_noise_sigma
            else:
                latents = latents.to(device=device, dtype=torch.float32)
                if noise is not None and len(timesteps):
                    latents = scheduler.add_noise(latents, noise.to(device, torch.float32), timesteps[:1])

            # --- ControlNet / T2I-Adapter / IP-Adapter (issue 15): loaded and prepared once, see control_guidance.py
            extras = stack.enter_context(denoise_extras(
                context, control=self.control, t2i_adapter=self.t2i_adapter, ip_adapter=self.ip_adapter, unet=unet,
                unet_base=str(getattr(unet_handle.config.base, "value", unet_handle.config.base)), latents=latents,
                total=len(timesteps),
            ))
            # --- end of the ControlNet / adapter set-up ---
            step_kwargs: dict[str, Any] = {}
            if "generator" in inspect.signature(scheduler.step).parameters:
                # Ancestral samplers draw fresh noise each step: from a CPU generator, for the same reason as noise.
                step_kwargs["generator"] = torch.Generator(device="cpu").manual_seed(seed)
            previews = PreviewMaker(sdxl=sdxl, device=device)
            pending: Any = None
            total = len(timesteps)
            for i, t in enumerate(timesteps):
                if context.util.is_canceled():
                    raise InvocationCanceledError(f"canceled at denoising step {i + 1} of {total}")
                if inpaint is not None:
                    latents = inpaint.blend_step(latents, t, scheduler)
                model_in = scheduler.scale_model_input(torch.cat([latents, latents]), t).to(dtype)
                # ControlNets and adapters read the 4-channel latents, before an inpaint model's extra channels.
                control_kwargs = extras.unet_kwargs(i, model_in, t, text, added)
                if inpaint is not None:
                    model_in = inpaint.unet_input(model_in)
                pred = unet(model_in, t, encoder_hidden_states=text, added_cond_kwargs=added, return_dict=False,
                            **control_kwargs)[0].float()
                if pending is not None:
                    # The UNet's work for this step is queued: waiting for the last preview costs no GPU time.
                    context.util.signal_progress(f"Denoising step {i} of {total}", i / total,
                                                 image=previews.finish(pending))
                uncond, cond = pred.chunk(2)
                guided = uncond + self.cfg_scale * (cond - uncond)
                if self.cfg_rescale_multiplier > 0:
                    std_cond = cond.std(dim=list(range(1, cond.ndim)), keepdim=True)
                    std_guided = guided.std(dim=list(range(1, guided.ndim)), keepdim=True)
                    rescaled = guided * (std_cond / std_guided)
                    guided = self.cfg_rescale_multiplier * rescaled + (1 - self.cfg_rescale_multiplier) * guided
                latents = scheduler.step(guided, t, latents, return_dict=False, **step_kwargs)[0]
                pending = previews.start(latents)
            if pending is not None:
                context.util.signal_progress(f"Denoising step {total} of {total}", 1.0, image=previews.finish(pending))
            if inpaint is not None:
                latents = inpaint.finish(latents)
            result = latents.float().cpu()

        name = context.tensors.save(result)
        width, height = result.shape[3] * LATENT_SCALE, result.shape[2] * LATENT_SCALE
        metadata = denoise_metadata(
            context, unet=self.unet, positive=positive, negative=negative, seed=self.noise.seed if self.noise else None,
            steps=self.steps, cfg_scale=self.cfg_scale, cfg_rescale_multiplier=self.cfg_rescale_multiplier,
            scheduler=self.scheduler, width=width, height=height, img2img=self.latents is not None,
            denoising_start=self.denoising_start, sdxl=sdxl,
        )
        return LatentsOutput(
            latents=LatentsField(latents_name=name, seed=self.noise.seed if self.noise is not None else None,
                                 metadata=metadata),
            width=width,
            height=height,
        )
