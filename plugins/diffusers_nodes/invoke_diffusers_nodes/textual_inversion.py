"""Textual-inversion embeddings in prompts: ``<name>`` is replaced by the vectors of the installed embedding ``name``.

The embedding is found in the model records by name, type ``embedding`` and the base of the text encoder's main
model, as InvokeAI does. Its vectors become new tokens of a copy of the tokenizer and new rows of the encoder's
token table, for the one encode only: the table is put back afterwards, so the cached encoder never changes.
A ``<word>`` that names no installed embedding stays in the prompt as text (and a warning is logged).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from invoke_sdk import InvocationContext

from invoke_diffusers_nodes.model_fields import CLIPField

__all__ = ["EMBEDDING_PATTERN", "embedding_vectors", "prompt_with_embeddings"]

EMBEDDING_PATTERN = re.compile(r"<([^<>\s]+)>")
"""``<name>`` in a prompt: InvokeAI's syntax for a textual-inversion embedding."""

# Which of an SDXL embedding's two tensors goes with which text encoder.
_SDXL_KEYS = {"text_encoder": "clip_l", "text_encoder_2": "clip_g"}


def embedding_vectors(state: Mapping[str, Any], target: str, name: str) -> Any:
    """The ``(n, dim)`` vectors of an embedding file's tensors for the ``target`` text encoder.

    A1111 files hold ``emb_params`` or ``string_to_param: {"*": ...}``; SDXL files ``clip_l`` and ``clip_g``;
    diffusers ``learned_embeds`` one tensor under the token's name.
    """
    if "clip_l" in state or "clip_g" in state:
        key = _SDXL_KEYS.get(target)
        if key is None or key not in state:
            raise ValueError(f"embedding {name} has no vectors for the {target} text encoder")
        vectors = state[key]
    elif "emb_params" in state:
        vectors = state["emb_params"]
    elif isinstance(state.get("string_to_param"), Mapping) and state["string_to_param"]:
        vectors = next(iter(state["string_to_param"].values()))
    elif "string_to_param.*" in state:
        vectors = state["string_to_param.*"]
    elif len(state) == 1:
        (vectors,) = state.values()
    else:
        raise ValueError(f"embedding {name}: its tensors ({', '.join(sorted(state))}) are not a known layout")
    return vectors.reshape(-1, vectors.shape[-1]) if vectors.dim() != 2 else vectors


def _find(context: InvocationContext, name: str, base: str) -> Any:
    matches = context.models.search_by_attrs(name=name, base=base, type="embedding")
    return matches[0] if matches else None


@contextmanager
def prompt_with_embeddings(context: InvocationContext, clip: CLIPField, target: str, prompt: str, tokenizer: Any,
                           encoder: Any) -> Iterator[tuple[str, Any]]:
    """``(prompt, tokenizer)`` to encode with: each ``<name>`` of an installed embedding becomes its tokens.

    Inside the block ``encoder`` knows those tokens; outside it is as it was.
    """
    import torch

    names = list(dict.fromkeys(EMBEDDING_PATTERN.findall(prompt)))
    if not names:
        yield prompt, tokenizer
        return
    base = str(getattr(context.models.get_config(clip.text_encoder).base, "value", None) or "")
    table = encoder.get_input_embeddings()
    width = table.weight.shape[1]
    found: list[tuple[str, Any]] = []
    for name in names:
        config = _find(context, name, base)
        if config is None:
            context.logger.warning("no %s embedding named %r is installed: <%s> stays in the prompt as text",
                                   base, name, name)
            continue
        with context.models.load(config.key) as state:
            vectors = embedding_vectors(state, target, name).detach().to(torch.float32).cpu()
        if vectors.shape[1] != width:
            raise ValueError(f"embedding {name} has vectors of width {vectors.shape[1]}, but this text encoder's "
                             f"tokens have width {width}: it was made for another base model")
        found.append((name, vectors))
    if not found:
        yield prompt, tokenizer
        return
    tokenizer = copy.deepcopy(tokenizer)
    placed: list[tuple[list[int], Any]] = []
    for name, vectors in found:
        tokens = [f"<{name}>"] + [f"<{name}-{i}>" for i in range(1, vectors.shape[0])]
        if tokenizer.add_tokens(tokens) != len(tokens):
            raise ValueError(f"embedding {name}: the tokenizer already has a token <{name}>")
        placed.append((tokenizer.convert_tokens_to_ids(tokens), vectors))
        prompt = prompt.replace(f"<{name}>", " ".join(tokens))
    size = max(table.weight.shape[0], 1 + max(max(ids) for ids, _ in placed))
    grown = torch.nn.Embedding(size, width, device=table.weight.device, dtype=table.weight.dtype)
    with torch.no_grad():
        grown.weight.zero_()
        grown.weight[: table.weight.shape[0]] = table.weight
        for ids, vectors in placed:
            grown.weight[ids] = vectors.to(table.weight.device, table.weight.dtype)
    encoder.set_input_embeddings(grown)
    try:
        yield prompt, tokenizer
    finally:
        encoder.set_input_embeddings(table)
