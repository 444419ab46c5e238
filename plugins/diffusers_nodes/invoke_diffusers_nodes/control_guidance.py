"""What ControlNets, T2I-Adapters and IP-Adapters add to the denoising loop; ``denoise_latents`` opens it.

:func:`denoise_extras` loads the models and prepares the images once, before the loop, and holds the models
on the device until the loop ends; :meth:`DenoiseExtras.unet_kwargs` gives, for each step, the residuals the
UNet adds (``down_block_additional_residuals``, ``mid_block_additional_residual`` from ControlNets,
``down_intrablock_additional_residuals`` from T2I-Adapters) and sets each IP-Adapter's scale for that step.

Semantics follow InvokeAI: a ControlNet or adapter applies from step ``floor(begin * steps)`` to step
``ceil(end * steps)``; a list of weights gives one weight per step; ``more_prompt`` and ``more_control`` use
soft injection (diffusers' guess mode), ``more_control`` and ``unbalanced`` run the ControlNet on the
conditioned half of the batch only (no control on the unconditioned prediction).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from invoke_sdk import InvocationContext

from invoke_diffusers_nodes.control_fields import ControlField, IPAdapterField, T2IAdapterField, weight_at
from invoke_diffusers_nodes.control_images import resize_control_image, to_tensor

__all__ = ["DenoiseExtras", "as_list", "denoise_extras", "step_active"]

_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def as_list(value: Any) -> list[Any]:
    """One item or a list of them (InvokeAI's inputs take either) as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def step_active(step: int, total: int, begin: float, end: float) -> bool:
    """Whether a control with this begin/end range applies at ``step`` of ``total``."""
    return math.floor(begin * total) <= step <= math.ceil(end * total)


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def _check_model(context: InvocationContext, model: Any, model_type: str, unet_base: str | None, what: str) -> None:
    config = context.models.get_config(model)
    if _value(config.type) != model_type:
        raise ValueError(f"model {model.key} is a {_value(config.type)} model, not a {what}")
    if unet_base is not None and _value(config.base) != unet_base:
        raise ValueError(f"{what} {model.key} is for {_value(config.base)}, but the main model is {unet_base}: "
                         f"pick a {what} made for {unet_base}")


@dataclass
class _ControlNet:
    model: Any
    image: Any  # (1, 3, H, W) in [0, 1]
    field: ControlField


@dataclass
class _Adapter:
    states: list[Any]
    field: T2IAdapterField


@dataclass
class _IPLayer:
    """One IP-Adapter's key/value projections of one cross-attention, and its scale for the current step."""

    to_k: Any
    to_v: Any
    tokens: Any  # (2, T, context): unconditioned, conditioned
    targeted: bool
    scale: float = 0.0


class IPAttnProcessor:
    """The UNet's own processor for the text, plus ``scale * attention(image tokens)`` for each IP-Adapter.

    The image attention goes through the block's output projection without its bias (the text result has it
    already), which equals projecting the sum as the reference implementation does.
    """

    def __init__(self, base: Any, layers: list[_IPLayer]) -> None:
        self.base = base
        self.layers = layers

    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None, attention_mask: Any = None,
                 temb: Any = None, *args: Any, **kwargs: Any) -> Any:
        import torch.nn.functional as F  # noqa: N812 - torch's own name

        out = self.base(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        for layer in self.layers:
            if layer.scale == 0 or not layer.targeted:
                continue
            batch = hidden_states.shape[0]
            query = attn.to_q(hidden_states)
            heads = attn.heads
            head_dim = query.shape[-1] // heads
            query = query.view(batch, -1, heads, head_dim).transpose(1, 2)
            key = layer.to_k(layer.tokens).view(batch, -1, heads, head_dim).transpose(1, 2)
            value = layer.to_v(layer.tokens).view(batch, -1, heads, head_dim).transpose(1, 2)
            image = F.scaled_dot_product_attention(query, key, value)
            image = image.transpose(1, 2).reshape(batch, -1, heads * head_dim).to(query.dtype)
            out = out + layer.scale * F.linear(image, attn.to_out[0].weight) / attn.rescale_output_factor
        return out


@dataclass
class DenoiseExtras:
    """The prepared ControlNets, T2I-Adapter states and IP-Adapter layers of one ``denoise_latents`` run."""

    total: int
    controlnets: list[_ControlNet] = field(default_factory=list)
    adapters: list[_Adapter] = field(default_factory=list)
    ip_layers: list[tuple[IPAdapterField, list[_IPLayer]]] = field(default_factory=list)

    def unet_kwargs(self, step: int, model_in: Any, t: Any, text: Any, added: dict[str, Any] | None
                    ) -> dict[str, Any]:
        """The UNet's extra keyword arguments for ``step`` (empty without controls); sets the IP scales."""
        import torch

        for ip_field, layers in self.ip_layers:
            active = step_active(step, self.total, ip_field.begin_step_percent, ip_field.end_step_percent)
            scale = weight_at(ip_field.weight, step) if active else 0.0
            for layer in layers:
                layer.scale = scale
        kwargs: dict[str, Any] = {}
        down: list[Any] | None = None
        mid: Any = None
        for cn in self.controlnets:
            f = cn.field
            if not step_active(step, self.total, f.begin_step_percent, f.end_step_percent):
                continue
            soft = f.control_mode in ("more_prompt", "more_control")
            cond_only = f.control_mode in ("more_control", "unbalanced")
            x, hidden, extra, image = model_in, text, added, torch.cat([cn.image, cn.image])
            if cond_only:
                x, hidden, image = model_in.chunk(2)[1], text.chunk(2)[1], cn.image
                extra = {k: v.chunk(2)[1] for k, v in added.items()} if added else None
            res_down, res_mid = cn.model(
                x, t, encoder_hidden_states=hidden, controlnet_cond=image,
                conditioning_scale=weight_at(f.control_weight, step), guess_mode=soft,
                added_cond_kwargs=extra, return_dict=False,
            )
            if cond_only:
                # No control on the unconditioned half: its residuals are zero.
                res_down = [torch.cat([torch.zeros_like(d), d]) for d in res_down]
                res_mid = torch.cat([torch.zeros_like(res_mid), res_mid])
            down = list(res_down) if down is None else [a + b for a, b in zip(down, res_down, strict=True)]
            mid = res_mid if mid is None else mid + res_mid
        if down is not None:
            kwargs["down_block_additional_residuals"] = down
            kwargs["mid_block_additional_residual"] = mid
        intrablock: list[Any] | None = None
        for adapter in self.adapters:
            a = adapter.field
            if not step_active(step, self.total, a.begin_step_percent, a.end_step_percent):
                continue
            weight = weight_at(a.weight, step)
            scaled = [s * weight for s in adapter.states]
            intrablock = scaled if intrablock is None else [x + y for x, y in zip(intrablock, scaled, strict=True)]
        if intrablock is not None:
            # The UNet pops from this list as it goes down: it gets a fresh one every step.
            kwargs["down_intrablock_additional_residuals"] = intrablock
        return kwargs


def _image(context: InvocationContext, name: str, width: int, height: int, mode: str, channels: int = 3) -> Any:
    image = context.images.get_pil(name, "L" if channels == 1 else "RGB")
    return resize_control_image(image, width, height, mode)


@contextmanager
def denoise_extras(
    context: InvocationContext, *, control: Any, t2i_adapter: Any, ip_adapter: Any, unet: Any, unet_base: str | None,
    latents: Any, total: int,
) -> Iterator[DenoiseExtras]:
    """Load and prepare every ControlNet, T2I-Adapter and IP-Adapter; restore the UNet's processors after."""
    import torch

    extras = DenoiseExtras(total=total)
    controls, adapters, ips = as_list(control), as_list(t2i_adapter), as_list(ip_adapter)
    if not (controls or adapters or ips):
        yield extras
        return
    device, dtype = unet.device, unet.dtype
    height, width = latents.shape[2] * 8, latents.shape[3] * 8
    with ExitStack() as stack:
        for cf in controls:
            _check_model(context, cf.control_model, "controlnet", unet_base, "ControlNet")
            model = stack.enter_context(context.models.load(cf.control_model))
            image = _image(context, cf.image.image_name, width, height, cf.resize_mode)
            extras.controlnets.append(_ControlNet(model, to_tensor(image, device=device, dtype=dtype), cf))
        for af in adapters:
            _check_model(context, af.t2i_adapter_model, "t2i_adapter", unet_base, "T2I-Adapter")
            with context.models.load(af.t2i_adapter_model) as adapter_model:
                channels = int(adapter_model.config.in_channels)
                image = _image(context, af.image.image_name, width, height, af.resize_mode, channels)
                pixels = to_tensor(image, device=adapter_model.device, dtype=adapter_model.dtype)
                with torch.inference_mode():
                    states = adapter_model(pixels)
            # Unconditioned and conditioned halves get the same adapter features (InvokeAI does the same).
            extras.adapters.append(_Adapter([torch.cat([s, s]).to(device, dtype) for s in states], af))
        if ips:
            _install_ip_adapters(context, stack, extras, ips, unet, unet_base)
        yield extras


def _encode_images(context: InvocationContext, encoder: Any, field: IPAdapterField) -> Any:
    import torch

    size = int(encoder.config.image_size)
    mean = torch.tensor(_CLIP_MEAN, device=encoder.device, dtype=encoder.dtype).view(1, 3, 1, 1)
    std = torch.tensor(_CLIP_STD, device=encoder.device, dtype=encoder.dtype).view(1, 3, 1, 1)
    pixels = []
    for image_field in as_list(field.image):
        image = context.images.get_pil(image_field.image_name, "RGB")
        image = resize_control_image(image, size, size, "crop_resize")
        pixels.append(to_tensor(image, device=encoder.device, dtype=encoder.dtype))
    batch = (torch.cat(pixels) - mean) / std
    return encoder(pixel_values=batch).image_embeds


def _install_ip_adapters(context: InvocationContext, stack: ExitStack, extras: DenoiseExtras,
                         ips: list[IPAdapterField], unet: Any, unet_base: str | None) -> None:
    import torch

    device, dtype = unet.device, unet.dtype
    names = list(unet.attn_processors)
    original = dict(unet.attn_processors)
    per_processor: dict[str, list[_IPLayer]] = {}
    for ipf in ips:
        _check_model(context, ipf.ip_adapter_model, "ip_adapter", unet_base, "IP-Adapter")
        with context.models.load(ipf.image_encoder_model) as encoder, torch.inference_mode():
            embeds = _encode_images(context, encoder, ipf)
        weights = stack.enter_context(context.models.load(ipf.ip_adapter_model))
        with torch.inference_mode():
            embeds = embeds.to(weights.proj.weight.device, weights.proj.weight.dtype)
            cond = weights.project(embeds).reshape(1, -1, weights.context_dim)
            uncond = weights.project(torch.zeros_like(embeds)).reshape(1, -1, weights.context_dim)
            tokens = torch.cat([uncond, cond]).to(device, dtype)
        layers: list[_IPLayer] = []
        for index, name in enumerate(names):
            if not name.endswith("attn2.processor"):
                continue
            if str(index) not in weights.to_k_ip:
                raise ValueError(f"IP-Adapter {ipf.ip_adapter_model.key} does not fit this UNet: it has no weights "
                                 f"for attention processor {index} ({name}); is it for another base?")
            layer = _IPLayer(weights.to_k_ip[str(index)], weights.to_v_ip[str(index)], tokens,
                             targeted=any(block in name for block in ipf.target_blocks))
            layers.append(layer)
            per_processor.setdefault(name, []).append(layer)
        extras.ip_layers.append((ipf, layers))
    unet.set_attn_processor({name: IPAttnProcessor(original[name], per_processor[name])
                             if name in per_processor else original[name] for name in names})
    # The UNet is the cache's, shared by every later run: its own processors go back when the loop ends.
    stack.callback(unet.set_attn_processor, original)
