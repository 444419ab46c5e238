"""Prompt encoders: SD 1.x/2.x (one CLIP) and SDXL (two CLIPs, pooled embeddings, size conditioning)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from invoke_sdk import BaseInvocation, ConditioningField, Input, InputField, InvocationContext, invocation

from invoke_diffusers_nodes.generation_metadata import CLIP_SKIP_KEY, PROMPT_KEY, STYLE_KEY
from invoke_diffusers_nodes.lora_patch import patched_with_loras
from invoke_diffusers_nodes.model_fields import CLIPField
from invoke_diffusers_nodes.outputs import ConditioningOutput
from invoke_diffusers_nodes.text_encoding import encode_prompt
from invoke_diffusers_nodes.textual_inversion import prompt_with_embeddings

__all__ = ["CompelInvocation", "SDXLCompelPromptInvocation", "encode_with_clip"]


def _encode(context: InvocationContext, clip: CLIPField, target: str, prompt: str, *, penultimate: bool) -> Any:
    """``(embeds, pooled, pad)``: pad is the empty prompt's chunk, used to even out prompt lengths."""
    tokenizer_handle = context.models.load(clip.tokenizer)
    encoder_handle = context.models.load(clip.text_encoder)
    with ExitStack() as stack:
        loras = [(stack.enter_context(context.models.load(lora.lora)), lora.weight, lora.lora.key)
                 for lora in clip.loras]
        tokenizer = stack.enter_context(tokenizer_handle)
        encoder = stack.enter_context(encoder_handle)
        stack.enter_context(patched_with_loras(encoder, target, loras))
        # <name> of a textual-inversion embedding: its tokens, known to the encoder inside this block only.
        prompt, tokenizer = stack.enter_context(prompt_with_embeddings(context, clip, target, prompt, tokenizer,
                                                                       encoder))
        embeds, pooled = encode_prompt(
            tokenizer, encoder, prompt, skipped_layers=clip.skipped_layers, penultimate=penultimate
        )
        pad, _ = encode_prompt(tokenizer, encoder, "", skipped_layers=clip.skipped_layers, penultimate=penultimate)
    return embeds, pooled, pad


encode_with_clip = _encode
"""``(embeds, pooled, pad)`` for a prompt with one CLIP (its LoRAs, CLIP skip and ``<embedding>`` names applied)."""


@invocation("compel", title="Prompt - SD1.5, SD2", tags=["prompt", "compel"], category="conditioning",
            version="1.0.0")
class CompelInvocation(BaseInvocation):
    """Encodes a prompt for SD 1.x / 2.x; prompts over 77 tokens are encoded in chunks."""

    prompt: str = InputField(default="", description="Prompt to be parsed by Compel to create a conditioning tensor")
    clip: CLIPField = InputField(description="CLIP (tokenizer, text encoder, LoRAs) and skipped layer count",
                                 input=Input.Connection, title="CLIP")

    def invoke(self, context: InvocationContext) -> ConditioningOutput:
        embeds, _, pad = _encode(context, self.clip, "text_encoder", self.prompt, penultimate=False)
        # The text rides along for the metadata denoise records (generation_metadata).
        name = context.conditioning.save({"embeds": embeds, "pad": pad, PROMPT_KEY: self.prompt,
                                          CLIP_SKIP_KEY: self.clip.skipped_layers})
        return ConditioningOutput(conditioning=ConditioningField(conditioning_name=name))


@invocation("sdxl_compel_prompt", title="Prompt - SDXL", tags=["sdxl", "compel", "prompt"], category="conditioning",
            version="1.0.0")
class SDXLCompelPromptInvocation(BaseInvocation):
    """Encodes a prompt for SDXL with both text encoders, giving pooled embeddings and size conditioning."""

    prompt: str = InputField(default="", description="Prompt to be parsed by Compel to create a conditioning tensor")
    style: str = InputField(default="", description="Prompt for the second encoder; empty uses the prompt")
    original_width: int = InputField(default=1024, description="")
    original_height: int = InputField(default=1024, description="")
    crop_top: int = InputField(default=0, description="")
    crop_left: int = InputField(default=0, description="")
    target_width: int = InputField(default=1024, description="")
    target_height: int = InputField(default=1024, description="")
    clip: CLIPField = InputField(description="CLIP 1", input=Input.Connection, title="CLIP 1")
    clip2: CLIPField = InputField(description="CLIP 2", input=Input.Connection, title="CLIP 2")

    def invoke(self, context: InvocationContext) -> ConditioningOutput:
        import torch

        e1, _, pad1 = _encode(context, self.clip, "text_encoder", self.prompt, penultimate=True)
        e2, pooled, pad2 = _encode(context, self.clip2, "text_encoder_2", self.style or self.prompt, penultimate=True)
        if pooled is None:
            raise ValueError("CLIP 2 of an SDXL model must be a text encoder with projection (pooled embeddings)")
        # The two tokenizers can split a prompt into different chunk counts; even them out with empty chunks.
        while e1.shape[1] < e2.shape[1]:
            e1 = torch.cat([e1, pad1], dim=1)
        while e2.shape[1] < e1.shape[1]:
            e2 = torch.cat([e2, pad2], dim=1)
        add_time_ids = torch.tensor(
            [[self.original_height, self.original_width, self.crop_top, self.crop_left,
              self.target_height, self.target_width]],
            dtype=torch.float32,
        )
        name = context.conditioning.save({
            "embeds": torch.cat([e1, e2], dim=-1),
            "pad": torch.cat([pad1, pad2], dim=-1),
            "pooled_embeds": pooled,
            "add_time_ids": add_time_ids,
            PROMPT_KEY: self.prompt,
            STYLE_KEY: self.style,
            CLIP_SKIP_KEY: self.clip.skipped_layers,
        })
        return ConditioningOutput(conditioning=ConditioningField(conditioning_name=name))
