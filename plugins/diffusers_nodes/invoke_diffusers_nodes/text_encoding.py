"""Prompt text to CLIP embeddings, with prompts longer than the encoder's 77 tokens split into chunks."""

from __future__ import annotations

from typing import Any

__all__ = ["encode_prompt"]


def _chunks(tokenizer: Any, prompt: str) -> list[list[int]]:
    ids: list[int] = tokenizer(prompt, add_special_tokens=False, truncation=False).input_ids
    size = tokenizer.model_max_length - 2
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    pieces = [ids[i : i + size] for i in range(0, len(ids), size)] or [[]]
    return [[tokenizer.bos_token_id, *p, tokenizer.eos_token_id] + [pad] * (size - len(p)) for p in pieces]


def encode_prompt(
    tokenizer: Any, text_encoder: Any, prompt: str, *, skipped_layers: int = 0, penultimate: bool = False
) -> tuple[Any, Any]:
    """``(embeds, pooled)`` for a prompt: embeds ``(1, 77 * chunks, dim)`` on the CPU in float32.

    Each chunk of 75 tokens is encoded on its own between start/end tokens and the results are
    concatenated (the way A1111 and compel handle long prompts). ``penultimate`` takes the
    second-to-last hidden layer without the final norm, as SDXL does; ``skipped_layers`` is CLIP skip.
    ``pooled`` is the projected embedding of the first chunk when the encoder has a projection, else None.
    """
    import torch

    batch = torch.tensor(_chunks(tokenizer, prompt), dtype=torch.long, device=text_encoder.device)
    with torch.no_grad():
        out = text_encoder(batch, output_hidden_states=True)
        if penultimate:
            hidden = out.hidden_states[-(2 + skipped_layers)]
        elif skipped_layers:
            # transformers 5's CLIPTextModel holds the norm itself; the projection variant keeps it in text_model.
            norm = getattr(text_encoder, "text_model", text_encoder).final_layer_norm
            hidden = norm(out.hidden_states[-(1 + skipped_layers)])
        else:
            hidden = out.last_hidden_state
        embeds = hidden.reshape(1, -1, hidden.shape[-1]).float().cpu()
        pooled = getattr(out, "text_embeds", None)
        pooled = pooled[:1].float().cpu() if pooled is not None else None
    return embeds, pooled
