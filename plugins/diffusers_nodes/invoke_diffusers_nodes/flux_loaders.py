"""FLUX model loaders: the parts of a diffusers FLUX pipeline folder, T5 encoder folders and CLIP text-encoder folders.

Precision: FLUX's transformer and T5 overflow float16 (activations past 65,504 turn whole images black), so where
the host asks for float16 they load in bfloat16 when the device has it, as Black Forest Labs and diffusers run
them. Storage: ``flux_transformer_storage`` (a host setting the host hands to :meth:`configure`) can keep the
transformer's weights in float8 and cast each layer up to the compute dtype as it runs (diffusers' layerwise
casting), which halves what the model cache holds for the largest part of FLUX; docs/benchmarks.md has the
measured bytes and pixel difference.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Literal

from invoke_sdk.models.loading import ModelConfigLike

from invoke_diffusers_nodes.torch_support import TorchLoader, torch_dtype

__all__ = ["FLUX_STORAGES", "FLUX_SUBMODELS", "CLIPEmbedDiffusersLoader", "FluxPipelineParts", "FluxStorage",
           "T5EncoderDiffusersLoader", "flux_compute_dtype", "flux_loaders"]

FLUX_SUBMODELS = ("transformer", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "vae", "scheduler")
FluxStorage = Literal["auto", "bfloat16", "float8"]
FLUX_STORAGES: tuple[str, ...] = ("auto", "bfloat16", "float8")
_LIBRARIES = {"diffusers", "transformers"}


def _bf16_available() -> bool:
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def flux_compute_dtype(dtype: str) -> str:
    """The dtype FLUX's transformer and T5 run in when the host asks for ``dtype``: bfloat16 instead of float16."""
    if dtype == "float16" and _bf16_available():
        return "bfloat16"
    return dtype


def _storage_setting(settings: Any) -> str:
    value = getattr(settings, "flux_transformer_storage", None)
    if value is None and isinstance(settings, dict):
        value = settings.get("flux_transformer_storage")
    value = str(value or "auto")
    if value not in FLUX_STORAGES:
        raise ValueError(f"flux_transformer_storage is {value!r}: use one of {', '.join(FLUX_STORAGES)}")
    return value


def _class(library: str, name: str) -> Any:
    return getattr(importlib.import_module(library), name)


def _tokenizer(folder: Path) -> Any:
    # AutoTokenizer reads tokenizer_config.json: T5TokenizerFast/T5Tokenizer or CLIPTokenizer, as the folder says.
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


class FluxPipelineParts:
    """One part of a diffusers FLUX pipeline folder (``FluxPipeline``/``FluxFillPipeline``), by its model_index.json."""

    def __init__(self) -> None:
        self.storage = "auto"

    def configure(self, settings: Any) -> None:
        """Read ``flux_transformer_storage`` from the host config (called once, before any load)."""
        self.storage = _storage_setting(settings)

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        if submodel not in FLUX_SUBMODELS:
            raise ValueError(
                f"FLUX model {config.key} is loaded one part at a time: ask for one of {', '.join(FLUX_SUBMODELS)}, "
                f"not {submodel!r}"
            )
        root = Path(config.path)
        index = json.loads((root / "model_index.json").read_text())
        entry = index.get(submodel)
        if not (isinstance(entry, list) and len(entry) == 2 and entry[0] in _LIBRARIES and entry[1]):
            raise ValueError(f"FLUX model {config.key} has no {submodel} (model_index.json in {root} lists none)")
        cls = _class(*entry)
        kwargs: dict[str, Any] = {"subfolder": submodel, "local_files_only": True}
        if submodel == "transformer":
            return self.transformer(cls, root, dtype)
        if submodel == "vae":
            kwargs["torch_dtype"] = torch_dtype(dtype)
        elif submodel == "text_encoder":
            kwargs["dtype"] = torch_dtype(dtype)
        elif submodel == "text_encoder_2":
            kwargs["dtype"] = torch_dtype(flux_compute_dtype(dtype))
        model = cls.from_pretrained(str(root), **kwargs)
        if hasattr(model, "eval"):
            model.eval()
        return model

    def transformer(self, cls: Any, root: Path, dtype: str) -> Any:
        """The transformer in its compute dtype, its weights stored as ``flux_transformer_storage`` says."""
        import torch

        compute = "bfloat16" if self.storage == "bfloat16" else flux_compute_dtype(dtype)
        model = cls.from_pretrained(str(root), subfolder="transformer", torch_dtype=torch_dtype(compute),
                                    local_files_only=True)
        if self.storage == "float8":
            # Weights in float8 (1 byte each), cast up per layer while it runs. Diffusers' skip list keeps the adaLN
            # modulation, embeddings and output projection as they are, since their error shows in every pixel.
            model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch_dtype(compute))
        model.eval()
        return model


def _encoder_folder(root: Path, model_dir: str, tokenizer_dir: str) -> tuple[Path, Path]:
    """(model folder, tokenizer folder): the folder itself, or InvokeAI's ``text_encoder*``/``tokenizer*`` pair."""
    if (root / model_dir / "config.json").is_file():
        tokenizer = root / tokenizer_dir
        return root / model_dir, tokenizer if tokenizer.is_dir() else root
    return root, root


class T5EncoderDiffusersLoader(TorchLoader):
    """``t5_encoder/diffusers``: a transformers ``T5EncoderModel`` folder with its tokenizer.

    Submodels ``text_encoder_2``/``tokenizer_2`` (what the FLUX loader node asks for; ``text_encoder``/``tokenizer``
    are the same). The encoder runs in bfloat16 where float16 was asked for (T5 overflows float16).
    """

    model_type = "t5_encoder"
    model_format = "diffusers"

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        model_dir, tokenizer_dir = _encoder_folder(Path(config.path), "text_encoder_2", "tokenizer_2")
        if submodel in ("tokenizer", "tokenizer_2"):
            return _tokenizer(tokenizer_dir)
        if submodel not in (None, "text_encoder", "text_encoder_2"):
            raise ValueError(f"T5 encoder {config.key} has a text_encoder_2 and a tokenizer_2, not {submodel!r}")
        from transformers import T5EncoderModel

        model = T5EncoderModel.from_pretrained(str(model_dir), dtype=torch_dtype(flux_compute_dtype(dtype)),
                                               local_files_only=True)
        return model.eval()


class CLIPEmbedDiffusersLoader(TorchLoader):
    """``clip_embed/diffusers``: a ``CLIPTextModel`` folder with its tokenizer (submodels text_encoder, tokenizer)."""

    model_type = "clip_embed"
    model_format = "diffusers"

    def load(self, config: ModelConfigLike, submodel: str | None, *, dtype: str) -> Any:
        model_dir, tokenizer_dir = _encoder_folder(Path(config.path), "text_encoder", "tokenizer")
        if submodel == "tokenizer":
            return _tokenizer(tokenizer_dir)
        if submodel not in (None, "text_encoder"):
            raise ValueError(f"CLIP text encoder {config.key} has a text_encoder and a tokenizer, not {submodel!r}")
        from transformers import CLIPTextModel

        model = CLIPTextModel.from_pretrained(str(model_dir), dtype=torch_dtype(dtype), local_files_only=True)
        return model.eval()


def flux_loaders() -> list[Any]:
    """The loaders of FLUX's own model types (the pipeline folder goes through ``main/diffusers``)."""
    return [T5EncoderDiffusersLoader(), CLIPEmbedDiffusersLoader()]
