"""Loading textual-inversion embeddings: the file's tensors, read safely (a few small tensors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from invoke_sdk.models.loading import ModelConfigLike

from invoke_diffusers_nodes.torch_support import TorchLoader

__all__ = ["EmbeddingLoader"]

_FOLDER_FILES = ("learned_embeds.safetensors", "learned_embeds.bin")


class EmbeddingLoader(TorchLoader):
    """``embedding/embedding_file`` and ``embedding/embedding_folder``: ``{name: tensor}`` (A1111 ``.pt`` files keep
    their ``string_to_param`` mapping). Pickled files only go through torch's ``weights_only`` loader."""

    model_type = "embedding"

    def __init__(self, model_format: str) -> None:
        self.model_format = model_format

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        import torch

        path = Path(config.path)
        if path.is_dir():
            files = [path / name for name in _FOLDER_FILES if (path / name).is_file()]
            if not files:
                raise ValueError(f"embedding {config.key}: no {' or '.join(_FOLDER_FILES)} in {path}")
            path = files[0]
        with path.open("rb") as fh:
            head = fh.read(9)
        if len(head) == 9 and head[8:9] == b"{":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"embedding {config.key}: {path.name} holds a {type(state).__name__}, not tensors")
        return state
