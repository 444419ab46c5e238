"""The ControlNet, T2I-Adapter and IP-Adapter nodes: they check and collect what ``denoise_latents`` applies.

Type ids, titles and field names are InvokeAI's, so its graphs run here. The models are only looked up
here (type and base checked, the IP-Adapter's image encoder found in the model records); they load in
``denoise_latents``.
"""

from __future__ import annotations

from typing import Any, Literal

from invoke_sdk import (
    BaseInvocation,
    BaseInvocationOutput,
    ImageField,
    InputField,
    InvocationContext,
    ModelIdentifierField,
    OutputField,
    TensorField,
    invocation,
    invocation_output,
)
from pydantic import field_validator, model_validator

from invoke_diffusers_nodes.control_fields import (
    CONTROLNET_MODE_VALUES,
    CONTROLNET_RESIZE_VALUES,
    ControlField,
    IPAdapterField,
    T2IAdapterField,
    check_begin_end,
    check_weights,
)

__all__ = [
    "CLIP_VISION_ENCODERS",
    "ControlNetInvocation",
    "ControlOutput",
    "IPAdapterInvocation",
    "IPAdapterOutput",
    "T2IAdapterInvocation",
    "T2IAdapterOutput",
    "ip_adapter_target_blocks",
]


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def _checked(context: InvocationContext, model: ModelIdentifierField, what: str, model_type: str,
             bases: set[str]) -> Any:
    config = context.models.get_config(model)
    if _value(config.type) != model_type:
        raise ValueError(f"model {model.key} is a {_value(config.type)} model, not a {what}")
    if _value(config.base) not in bases:
        raise ValueError(f"{what} {model.key} has base {_value(config.base)}; this node takes "
                         f"{'/'.join(sorted(bases))}")
    return config


@invocation_output("control_output")
class ControlOutput(BaseInvocationOutput):
    """A ControlNet to apply."""

    control: ControlField = OutputField(description="ControlNet(s) to apply")


@invocation_output("t2i_adapter_output")
class T2IAdapterOutput(BaseInvocationOutput):
    """A T2I-Adapter to apply."""

    t2i_adapter: T2IAdapterField = OutputField(description="T2I-Adapter(s) to apply", title="T2I Adapter")


@invocation_output("ip_adapter_output")
class IPAdapterOutput(BaseInvocationOutput):
    """An IP-Adapter to apply."""

    ip_adapter: IPAdapterField = OutputField(description="IP-Adapter to apply", title="IP-Adapter")


@invocation("controlnet", title="ControlNet - SD1.5, SD2, SDXL", tags=["controlnet"], category="conditioning",
            version="1.1.3")
class ControlNetInvocation(BaseInvocation):
    """Collects ControlNet info to pass to other nodes"""

    image: ImageField = InputField(description="The control image")
    control_model: ModelIdentifierField = InputField(description="ControlNet model to load")
    control_weight: float | list[float] = InputField(default=1.0, description="The weight given to the ControlNet")
    begin_step_percent: float = InputField(default=0, ge=0, le=1,
                                           description="When the ControlNet is first applied (% of total steps)")
    end_step_percent: float = InputField(default=1, ge=0, le=1,
                                         description="When the ControlNet is last applied (% of total steps)")
    control_mode: CONTROLNET_MODE_VALUES = InputField(default="balanced", description="The control mode used")
    resize_mode: CONTROLNET_RESIZE_VALUES = InputField(default="just_resize", description="The resize mode used")

    @field_validator("control_weight")
    @classmethod
    def _weights(cls, value: float | list[float]) -> float | list[float]:
        return check_weights(value)

    @model_validator(mode="after")
    def _range(self) -> ControlNetInvocation:
        check_begin_end(self.begin_step_percent, self.end_step_percent)
        return self

    def invoke(self, context: InvocationContext) -> ControlOutput:
        _checked(context, self.control_model, "ControlNet", "controlnet", {"sd-1", "sd-2", "sdxl"})
        return ControlOutput(control=ControlField(
            image=self.image, control_model=self.control_model, control_weight=self.control_weight,
            begin_step_percent=self.begin_step_percent, end_step_percent=self.end_step_percent,
            control_mode=self.control_mode, resize_mode=self.resize_mode,
        ))


@invocation("t2i_adapter", title="T2I-Adapter - SD1.5, SDXL", tags=["t2i_adapter", "control"],
            category="conditioning", version="1.0.4")
class T2IAdapterInvocation(BaseInvocation):
    """Collects T2I-Adapter info to pass to other nodes."""

    image: ImageField = InputField(description="The IP-Adapter image prompt.")
    t2i_adapter_model: ModelIdentifierField = InputField(description="The T2I-Adapter model.",
                                                         title="T2I-Adapter Model", ui_order=-1)
    weight: float | list[float] = InputField(default=1, description="The weight given to the T2I-Adapter",
                                             title="Weight")
    begin_step_percent: float = InputField(default=0, ge=0, le=1,
                                           description="When the T2I-Adapter is first applied (% of total steps)")
    end_step_percent: float = InputField(default=1, ge=0, le=1,
                                         description="When the T2I-Adapter is last applied (% of total steps)")
    resize_mode: CONTROLNET_RESIZE_VALUES = InputField(
        default="just_resize",
        description="The resize mode applied to the T2I-Adapter input image so that it matches the target output size.",
    )

    @field_validator("weight")
    @classmethod
    def _weights(cls, value: float | list[float]) -> float | list[float]:
        return check_weights(value, low=0)

    @model_validator(mode="after")
    def _range(self) -> T2IAdapterInvocation:
        check_begin_end(self.begin_step_percent, self.end_step_percent)
        return self

    def invoke(self, context: InvocationContext) -> T2IAdapterOutput:
        _checked(context, self.t2i_adapter_model, "T2I-Adapter", "t2i_adapter", {"sd-1", "sdxl"})
        return T2IAdapterOutput(t2i_adapter=T2IAdapterField(
            image=self.image, t2i_adapter_model=self.t2i_adapter_model, weight=self.weight,
            begin_step_percent=self.begin_step_percent, end_step_percent=self.end_step_percent,
            resize_mode=self.resize_mode,
        ))


CLIP_VISION_ENCODERS: dict[str, tuple[str, str]] = {
    "ViT-L": ("InvokeAI/clip-vit-large-patch14", "clip-vit-large-patch14"),
    "ViT-H": ("InvokeAI/ip_adapter_sd_image_encoder", "ip_adapter_sd_image_encoder"),
    "ViT-G": ("InvokeAI/ip_adapter_sdxl_image_encoder", "ip_adapter_sdxl_image_encoder"),
}
"""InvokeAI's starter encoders: (source, installed name) for the ``clip_vision_model`` choices."""

_TARGET_BLOCKS: dict[str, dict[str, list[str]]] = {
    "style": {"sd-1": ["up_blocks.1"], "sdxl": ["up_blocks.0.attentions.1"]},
    "composition": {"sd-1": ["down_blocks.2", "mid_block"], "sdxl": ["down_blocks.2.attentions.1"]},
    "style_precise": {"sd-1": ["up_blocks.1", "down_blocks.2", "mid_block"],
                      "sdxl": ["up_blocks.0.attentions.1", "down_blocks.2.attentions.1"]},
    "style_strong": {
        "sd-1": ["up_blocks.0", "up_blocks.1", "up_blocks.2", "down_blocks.0", "down_blocks.1"],
        "sdxl": [f"up_blocks.{u}.attentions.{a}" for a in (1, 2, 0) for u in range(3)]
        + [f"down_blocks.{d}.attentions.{a}" for d in range(3) for a in range(3) if (d, a) != (2, 1)],
    },
}


def ip_adapter_target_blocks(method: str, base: str) -> list[str]:
    """The UNet blocks an IP-Adapter method applies to (InvokeAI's table); ``["block"]`` matches every block."""
    if method == "full":
        return ["block"]
    blocks = _TARGET_BLOCKS.get(method, {}).get(base)
    if blocks is None:
        raise ValueError(f"IP-Adapter method {method!r} is not defined for base {base!r}: use 'full'")
    return blocks


@invocation("ip_adapter", title="IP-Adapter - SD1.5, SDXL", tags=["ip_adapter", "control"],
            category="conditioning", version="1.5.1")
class IPAdapterInvocation(BaseInvocation):
    """Collects IP-Adapter info to pass to other nodes."""

    image: ImageField | list[ImageField] = InputField(description="The IP-Adapter image prompt(s).", ui_order=1)
    ip_adapter_model: ModelIdentifierField = InputField(description="The IP-Adapter model.",
                                                        title="IP-Adapter Model", ui_order=-1)
    clip_vision_model: Literal["ViT-H", "ViT-G", "ViT-L"] = InputField(
        default="ViT-H", ui_order=2,
        description="CLIP Vision model to use. Overrides model settings. Mandatory for checkpoint models.",
    )
    weight: float | list[float] = InputField(default=1, description="The weight given to the IP-Adapter",
                                             title="Weight")
    method: Literal["full", "style", "composition", "style_strong", "style_precise"] = InputField(
        default="full", description="The method to apply the IP-Adapter"
    )
    begin_step_percent: float = InputField(default=0, ge=0, le=1,
                                           description="When the IP-Adapter is first applied (% of total steps)")
    end_step_percent: float = InputField(default=1, ge=0, le=1,
                                         description="When the IP-Adapter is last applied (% of total steps)")
    mask: TensorField | None = InputField(default=None,
                                          description="A mask defining the region that this IP-Adapter applies to.")

    @field_validator("weight")
    @classmethod
    def _weights(cls, value: float | list[float]) -> float | list[float]:
        return check_weights(value)

    @model_validator(mode="after")
    def _range(self) -> IPAdapterInvocation:
        check_begin_end(self.begin_step_percent, self.end_step_percent)
        return self

    def invoke(self, context: InvocationContext) -> IPAdapterOutput:
        if self.mask is not None:
            raise ValueError("IP-Adapter masks are not supported here yet: leave mask unset")
        config = _checked(context, self.ip_adapter_model, "IP-Adapter", "ip_adapter", {"sd-1", "sdxl"})
        encoder_id = getattr(config, "image_encoder_model_id", None) if _value(config.format) == "invokeai" else None
        if encoder_id:
            # InvokeAI's folder names its encoder by repo id; the installed encoder carries the last part as name.
            name = str(encoder_id).split("/")[-1].strip()
        else:
            encoder_id, name = CLIP_VISION_ENCODERS[self.clip_vision_model]
        found = context.models.search_by_attrs(name=name, base="any", type="clip_vision")
        if not found:
            raise ValueError(
                f"the image encoder this IP-Adapter needs ({encoder_id}) is not installed: install it "
                f"(POST /api/v2/models/install?source={encoder_id}) so that its name is {name!r}"
            )
        encoder = found[0]
        return IPAdapterOutput(ip_adapter=IPAdapterField(
            image=self.image, ip_adapter_model=self.ip_adapter_model,
            image_encoder_model=ModelIdentifierField(key=encoder.key, hash=encoder.hash, name=encoder.name,
                                                     base=_value(encoder.base), type=_value(encoder.type)),
            weight=self.weight, target_blocks=ip_adapter_target_blocks(self.method, _value(config.base)),
            method=self.method, begin_step_percent=self.begin_step_percent, end_step_percent=self.end_step_percent,
        ))
