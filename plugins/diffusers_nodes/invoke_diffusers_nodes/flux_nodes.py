"""FLUX.1 nodes with InvokeAI 6's ids and field names: model loader, text encoder, denoise, VAE decode and encode."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, Literal

from invoke_sdk import (
    BaseInvocation,
    ImageField,
    Input,
    InputField,
    InvocationContext,
    LatentsField,
    ModelIdentifierField,
    invocation,
)
from invoke_sdk.cancellation import InvocationCanceledError
from invoke_sdk.models.loading import config_field

from invoke_diffusers_nodes.denoise_mask import DenoiseMaskField
from invoke_diffusers_nodes.flux_fields import (
    FluxConditioningField,
    FluxConditioningOutput,
    FluxModelLoaderOutput,
    T5EncoderField,
    TransformerField,
)
from invoke_diffusers_nodes.flux_sampling import (
    LATENT_CHANNELS,
    VAE_SCALE,
    flux_schedule,
    image_ids,
    latent_size,
    pack,
    text_ids,
    unpack,
)
from invoke_diffusers_nodes.generation_metadata import PROMPT_KEY, decoded_metadata, model_metadata
from invoke_diffusers_nodes.lora_patch import patched_with_loras
from invoke_diffusers_nodes.model_fields import CLIPField, VAEField, submodel
from invoke_diffusers_nodes.model_nodes import checked_model
from invoke_diffusers_nodes.outputs import ImageOutput, LatentsOutput
from invoke_diffusers_nodes.previews import PreviewMaker

__all__ = ["FluxDenoiseInvocation", "FluxModelLoaderInvocation", "FluxTextEncoderInvocation",
           "FluxVaeDecodeInvocation", "FluxVaeEncodeInvocation"]

_T5_KEY, _CLIP_KEY = "t5_embeds", "clip_embeds"


@invocation("flux_model_loader", title="Main Model - FLUX", tags=["model", "flux"], category="model",
            version="1.1.0")
class FluxModelLoaderInvocation(BaseInvocation):
    """Loads a FLUX model, giving its transformer, CLIP, T5 encoder and VAE.

    T5, CLIP and the VAE come from the chosen models, or from the FLUX pipeline folder itself when left empty.
    """

    model: ModelIdentifierField = InputField(description="FLUX model (transformer) to load")
    t5_encoder_model: ModelIdentifierField | None = InputField(
        default=None, title="T5 Encoder", description="T5 encoder model; empty takes the FLUX folder's own")
    clip_embed_model: ModelIdentifierField | None = InputField(
        default=None, title="CLIP Embed", description="CLIP text encoder model; empty takes the FLUX folder's own")
    vae_model: ModelIdentifierField | None = InputField(
        default=None, title="VAE", description="FLUX VAE model; empty takes the FLUX folder's own")

    def invoke(self, context: InvocationContext) -> FluxModelLoaderOutput:
        config = checked_model(context, self.model, "FLUX main model", types={"main"}, bases={"flux"},
                               hint=" (use the SD1.5/SD2 or SDXL main model node for Stable Diffusion models)")
        m = self.model
        if self.t5_encoder_model is not None:
            checked_model(context, self.t5_encoder_model, "T5 encoder", types={"t5_encoder"})
            t5 = self.t5_encoder_model
        else:
            t5 = m
        if self.clip_embed_model is not None:
            checked_model(context, self.clip_embed_model, "CLIP text encoder", types={"clip_embed"})
            clip = self.clip_embed_model
        else:
            clip = m
        if self.vae_model is not None:
            checked_model(context, self.vae_model, "VAE", types={"vae"}, bases={"flux"},
                          hint=" (FLUX has a 16-channel VAE of its own)")
            vae = self.vae_model
        else:
            vae = submodel(m, "vae")
        schnell = config_field(config, "variant") == "schnell"
        return FluxModelLoaderOutput(
            transformer=TransformerField(transformer=submodel(m, "transformer")),
            clip=CLIPField(tokenizer=submodel(clip, "tokenizer"), text_encoder=submodel(clip, "text_encoder")),
            t5_encoder=T5EncoderField(tokenizer=submodel(t5, "tokenizer_2"),
                                      text_encoder=submodel(t5, "text_encoder_2")),
            vae=VAEField(vae=vae),
            max_seq_len=256 if schnell else 512,
        )


def _with_loras(context: InvocationContext, stack: ExitStack, model: Any, target: str, loras: list[Any]) -> None:
    found = [(stack.enter_context(context.models.load(lora.lora)), lora.weight, lora.lora.key) for lora in loras]
    stack.enter_context(patched_with_loras(model, target, found))


def _encode(context: InvocationContext, encoder_field: T5EncoderField | CLIPField, target: str, prompt: str,
            max_length: int | None, embedding: Callable[[Any], Any]) -> Any:
    """One text encoder's ``embedding`` of ``prompt`` (float32, on the CPU), with its LoRAs patched in as ``target``
    while it runs; ``max_length`` None pads to the tokenizer's own length."""
    import torch

    with ExitStack() as stack:
        tokenizer = stack.enter_context(context.models.load(encoder_field.tokenizer))
        encoder = stack.enter_context(context.models.load(encoder_field.text_encoder))
        _with_loras(context, stack, encoder, target, encoder_field.loras)
        ids = tokenizer(prompt, padding="max_length", max_length=max_length or tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids
        with torch.inference_mode():
            return embedding(encoder(ids.to(encoder.device), output_hidden_states=False)).float().cpu()


@invocation("flux_text_encoder", title="Prompt - FLUX", tags=["prompt", "conditioning", "flux"], category="prompt",
            version="1.1.2")
class FluxTextEncoderInvocation(BaseInvocation):
    """Encodes a prompt for FLUX: T5's token embeddings and CLIP's pooled embedding."""

    clip: CLIPField = InputField(title="CLIP", description="CLIP (tokenizer, text encoder, LoRAs)",
                                 input=Input.Connection)
    t5_encoder: T5EncoderField = InputField(title="T5Encoder", description="T5 tokenizer and encoder",
                                            input=Input.Connection)
    t5_max_seq_len: Literal[256, 512] = InputField(
        description="Max sequence length for the T5 encoder. Expected to be 256 for FLUX schnell models and 512 for "
        "FLUX dev models.")
    prompt: str = InputField(description="Text prompt to encode.")

    def invoke(self, context: InvocationContext) -> FluxConditioningOutput:
        # T5 first, then CLIP: the two need not be in memory together.
        t5 = _encode(context, self.t5_encoder, "text_encoder_2", self.prompt, self.t5_max_seq_len,
                     lambda out: out[0])
        pooled = _encode(context, self.clip, "text_encoder", self.prompt, None, lambda out: out.pooler_output)
        name = context.conditioning.save({_T5_KEY: t5, _CLIP_KEY: pooled, PROMPT_KEY: self.prompt})
        return FluxConditioningOutput(conditioning=FluxConditioningField(conditioning_name=name))


def _flux_conditioning(context: InvocationContext, field: FluxConditioningField, what: str) -> dict[str, Any]:
    if field.mask is not None:
        raise ValueError(f"{what} carries a regional mask, which flux_denoise does not apply: connect a conditioning "
                         "without one (regional FLUX prompts are not supported)")
    loaded = context.conditioning.load(field.conditioning_name)
    if not (isinstance(loaded, dict) and _T5_KEY in loaded and _CLIP_KEY in loaded):
        raise ValueError(f"{what} is not a FLUX conditioning: connect a FLUX prompt node (flux_text_encoder)")
    return loaded


def _step_index(index: int, total: int) -> int:
    return index + total if index < 0 else index


@invocation("flux_denoise", title="FLUX Denoise", tags=["image", "flux"], category="latents", version="4.6.0")
class FluxDenoiseInvocation(BaseInvocation):
    """Runs denoising with a FLUX transformer: text to image, or image to image from latents."""

    latents: LatentsField | None = InputField(default=None, description="Latents of the starting image (img2img)",
                                              input=Input.Connection)
    denoise_mask: DenoiseMaskField | None = InputField(
        default=None, input=Input.Connection, description="A mask of the region to apply the denoising process to. "
        "Values of 0.0 represent the regions to be fully denoised, and 1.0 represent the regions to be preserved.")
    denoising_start: float = InputField(default=0.0, ge=0, le=1, description="When to start denoising, 0 to 1")
    denoising_end: float = InputField(default=1.0, ge=0, le=1, description="When to stop denoising, 0 to 1")
    add_noise: bool = InputField(default=True, description="Add noise based on denoising start.")
    transformer: TransformerField = InputField(description="FLUX transformer (and LoRAs)", input=Input.Connection,
                                               title="Transformer")
    positive_text_conditioning: FluxConditioningField = InputField(description="Positive conditioning tensor",
                                                                   input=Input.Connection)
    negative_text_conditioning: FluxConditioningField | None = InputField(
        default=None, description="Negative conditioning tensor. Can be None if cfg_scale is 1.0.",
        input=Input.Connection)
    cfg_scale: float = InputField(default=1.0, ge=0, title="CFG Scale",
                                  description="Classifier-free guidance with the negative conditioning (1 is off)")
    cfg_scale_start_step: int = InputField(default=0, title="CFG Scale Start Step",
                                           description="Index of the first step to apply cfg_scale (negative counts "
                                           "back from the last)")
    cfg_scale_end_step: int = InputField(default=-1, title="CFG Scale End Step",
                                         description="Index of the last step to apply cfg_scale (negative counts back "
                                         "from the last)")
    width: int = InputField(default=1024, multiple_of=16, gt=0, description="Width of the generated image.")
    height: int = InputField(default=1024, multiple_of=16, gt=0, description="Height of the generated image.")
    num_steps: int = InputField(default=4, gt=0, description="Number of diffusion steps. Recommended values are "
                                "schnell: 4, dev: 50.")
    guidance: float = InputField(default=4.0, description="The guidance strength. Higher values adhere more strictly "
                                 "to the prompt, and will produce less diverse images. FLUX dev only, ignored for "
                                 "schnell.")
    seed: int = InputField(default=0, ge=0, description="Randomness seed for reproducibility.")

    def _check(self, context: InvocationContext) -> str:
        """The model's variant, after refusing what this node cannot run."""
        config = checked_model(context, self.transformer.transformer, "FLUX transformer", types={"main"},
                               bases={"flux"})
        variant = str(config_field(config, "variant") or "dev")
        if variant == "dev_fill":
            raise ValueError(f"model {config.key} is FLUX Fill (inpainting with a mask image): flux_denoise runs dev "
                             "and schnell models only")
        if self.denoising_start >= self.denoising_end:
            raise ValueError(f"denoising_start ({self.denoising_start}) must be below denoising_end "
                             f"({self.denoising_end})")
        if self.latents is None and self.denoising_start > 0:
            raise ValueError("denoising_start above 0 is img2img: connect the latents of the starting image")
        if self.latents is None and self.denoise_mask is not None:
            raise ValueError("a denoise_mask keeps part of a starting image: connect that image's latents too")
        return variant

    def invoke(self, context: InvocationContext) -> LatentsOutput:
        import torch

        positive = _flux_conditioning(context, self.positive_text_conditioning, "positive_text_conditioning")
        variant = self._check(context)
        negative = None
        if self.negative_text_conditioning is not None and self.cfg_scale != 1:
            negative = _flux_conditioning(context, self.negative_text_conditioning, "negative_text_conditioning")
        h, w = latent_size(self.width, self.height)
        init = None
        if self.latents is not None:
            init = context.tensors.load(self.latents.latents_name).float()
            if tuple(init.shape[1:]) != (LATENT_CHANNELS, h, w):
                raise ValueError(f"latents of shape {tuple(init.shape)} do not fit a {self.width}x{self.height} FLUX "
                                 f"image ({LATENT_CHANNELS}x{h}x{w}): encode the image with flux_vae_encode and give "
                                 "its size")
        # Noise from a CPU generator in float32, so a seed makes the same image on every device.
        noise = torch.randn((1, LATENT_CHANNELS, h, w), generator=torch.Generator("cpu").manual_seed(self.seed))

        with ExitStack() as stack:
            transformer = stack.enter_context(context.models.load(self.transformer.transformer))
            _with_loras(context, stack, transformer, "transformer", self.transformer.loras)
            stack.enter_context(torch.inference_mode())
            device, dtype = transformer.device, transformer.dtype
            timesteps, sigmas = flux_schedule(self.num_steps, (h // 2) * (w // 2), shifted=variant != "schnell",
                                              device=device)
            # Keep the steps whose sigma lies inside [1 - denoising_end, 1 - denoising_start].
            start_at = 1 - self.denoising_start
            first = int((sigmas[:-1] > start_at + 1e-6).sum())
            last = int((sigmas[:-1] > 1 - self.denoising_end + 1e-6).sum())
            latents = noise
            if init is not None:
                sigma0 = float(sigmas[first]) if first < len(timesteps) else 0.0
                latents = sigma0 * noise + (1 - sigma0) * init if self.add_noise else init
            x = pack(latents).to(device)
            keep = self._keep_mask(context, h, w, device)  # packed; 1 keeps the starting latents
            img = image_ids(h, w).to(device, dtype)
            embeds = [(positive[_T5_KEY].to(device, dtype), positive[_CLIP_KEY].to(device, dtype))]
            if negative is not None:
                embeds.append((negative[_T5_KEY].to(device, dtype), negative[_CLIP_KEY].to(device, dtype)))
            conds = [(t5, pooled, text_ids(t5.shape[1]).to(device, dtype)) for t5, pooled in embeds]
            guidance = None
            if transformer.config.guidance_embeds:
                guidance = torch.full([1], self.guidance, device=device, dtype=torch.float32)
            total = last - first
            cfg_from = _step_index(self.cfg_scale_start_step, total)
            cfg_to = _step_index(self.cfg_scale_end_step, total)
            previews = PreviewMaker(sdxl=False, device=device, flux=True)
            for n, i in enumerate(range(first, last)):
                if context.util.is_canceled():
                    raise InvocationCanceledError(f"canceled at denoising step {n + 1} of {total}")
                timestep = timesteps[i].expand(1).to(dtype) / 1000
                preds = [transformer(hidden_states=x.to(dtype), timestep=timestep, guidance=guidance,
                                     pooled_projections=pooled, encoder_hidden_states=t5, txt_ids=ids, img_ids=img,
                                     return_dict=False)[0].float()
                         for t5, pooled, ids in conds[: 2 if cfg_from <= n <= cfg_to else 1]]
                pred = preds[0] if len(preds) == 1 else preds[1] + self.cfg_scale * (preds[0] - preds[1])
                x = x.float() + (sigmas[i + 1] - sigmas[i]) * pred
                if keep is not None:
                    # The kept area follows the starting image noised to the next sigma (exactly it at sigma 0).
                    sigma = sigmas[i + 1]
                    x = x * (1 - keep) + (sigma * pack(noise).to(device) + (1 - sigma) * pack(init).to(device)) * keep
                context.util.signal_progress(f"Denoising step {n + 1} of {total}", (n + 1) / total,
                                             image=previews.finish(previews.start(unpack(x, h, w))))
            result = unpack(x, h, w).float().cpu()

        name = context.tensors.save(result)
        metadata = {
            "generation_mode": "flux_inpaint" if self.denoise_mask is not None
            else "flux_img2img" if init is not None else "flux_txt2img",
            "model": model_metadata(context, self.transformer.transformer),
            "steps": self.num_steps, "guidance": self.guidance, "cfg_scale": self.cfg_scale, "seed": self.seed,
            "width": self.width, "height": self.height, "positive_prompt": positive.get(PROMPT_KEY),
            "loras": [{"model": model_metadata(context, lora.lora), "weight": lora.weight}
                      for lora in self.transformer.loras],
        }
        if init is not None:
            metadata["strength"] = round(1 - self.denoising_start, 6)
        if negative is not None:
            metadata["negative_prompt"] = negative.get(PROMPT_KEY)
        return LatentsOutput(latents=LatentsField(latents_name=name, seed=self.seed, metadata=metadata),
                             width=w * VAE_SCALE, height=h * VAE_SCALE)


    def _keep_mask(self, context: InvocationContext, h: int, w: int, device: Any) -> Any:
        """The denoise mask at latent size, packed like the latents (None without one)."""
        import torch

        if self.denoise_mask is None:
            return None
        mask = context.tensors.load(self.denoise_mask.mask_name).float()
        while mask.dim() < 4:
            mask = mask.unsqueeze(0)
        if tuple(mask.shape[-2:]) != (h, w):
            mask = torch.nn.functional.interpolate(mask, size=(h, w), mode="bilinear", align_corners=False)
        return pack(mask[:, :1].clamp(0, 1).expand(1, LATENT_CHANNELS, h, w).contiguous()).to(device)


def _flux_vae(vae: Any, key: str) -> Any:
    channels = vae.config.latent_channels
    if channels != LATENT_CHANNELS:
        raise ValueError(f"VAE {key} has {channels} latent channels: FLUX needs its own 16-channel VAE (pick the "
                         "FLUX model's VAE)")
    return vae


@invocation("flux_vae_decode", title="Latents to Image - FLUX", tags=["latents", "image", "vae", "l2i", "flux"],
            category="latents", version="1.0.2")
class FluxVaeDecodeInvocation(BaseInvocation):
    """Decodes FLUX latents to an image and saves it."""

    latents: LatentsField = InputField(description="Latents tensor", input=Input.Connection)
    vae: VAEField = InputField(description="VAE", input=Input.Connection, title="VAE")

    def invoke(self, context: InvocationContext) -> ImageOutput:
        import torch
        from PIL import Image

        latents = context.tensors.load(self.latents.latents_name)
        with context.models.load(self.vae.vae) as vae, torch.inference_mode():
            _flux_vae(vae, self.vae.vae.key)
            scaled = latents.to(vae.device, vae.dtype) / vae.config.scaling_factor + vae.config.shift_factor
            image = vae.decode(scaled, return_dict=False)[0]
            pixels = ((image[0].float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
            array = pixels.permute(1, 2, 0).cpu().numpy()
        pil = Image.fromarray(array, mode="RGB")
        metadata = decoded_metadata(context, self.latents.metadata, self.vae.vae, pil.width, pil.height)
        saved = context.images.save(pil, metadata=metadata)
        return ImageOutput(image=saved, width=pil.width, height=pil.height)


@invocation("flux_vae_encode", title="Image to Latents - FLUX", tags=["latents", "image", "vae", "i2l", "flux"],
            category="latents", version="1.0.1")
class FluxVaeEncodeInvocation(BaseInvocation):
    """Encodes an image into FLUX latents (the distribution's mode, so it is deterministic)."""

    image: ImageField = InputField(description="The image to encode.")
    vae: VAEField = InputField(description="VAE", input=Input.Connection, title="VAE")

    def invoke(self, context: InvocationContext) -> LatentsOutput:
        import numpy as np
        import torch

        pil = context.images.get_pil(self.image.image_name, "RGB")
        side = VAE_SCALE * 2  # whole 2x2 latent patches
        width, height = pil.width // side * side, pil.height // side * side
        if (width, height) != pil.size:
            pil = pil.crop((0, 0, width, height))
        pixels = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        with context.models.load(self.vae.vae) as vae, torch.inference_mode():
            _flux_vae(vae, self.vae.vae.key)
            dist = vae.encode(pixels.to(vae.device, vae.dtype), return_dict=False)[0]
            latents = ((dist.mode() - vae.config.shift_factor) * vae.config.scaling_factor).float().cpu()
        name = context.tensors.save(latents)
        return LatentsOutput(latents=LatentsField(latents_name=name), width=width, height=height)
