"""Loading and feeding a sentence-transformers model with torch: what the embedder's torch
runtime and the ONNX export (``knowledge_base.onnx_export``) both do, written once. Importing
this module imports neither torch nor sentence-transformers."""

from __future__ import annotations

import os
from typing import Any

# Set before transformers/huggingface_hub are imported (they read it once).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class EmbedderError(RuntimeError):
    """The embedding model could not be loaded or used."""


def load_sentence_transformer(model_path: str, max_seq_length: int) -> Any:
    """The sentence-transformers model of a folder, on the CPU, in evaluation mode (torch's
    runtime, and what the ONNX export is made from)."""
    try:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(model_path, device="cpu")
    except Exception as exc:  # missing folder, corrupt weights, offline hub
        raise EmbedderError(f"Cannot load embedding model {model_path!r}: {exc}") from exc
    model.max_seq_length = max_seq_length
    model.eval()
    return model


def sentence_dimension(model: Any) -> int:
    """A sentence-transformers model's vector size (under the method's newer name, or the older)."""
    get_dim = getattr(model, "get_embedding_dimension", None) or (
        model.get_sentence_embedding_dimension
    )
    return int(get_dim())


def tokenize(model: Any, texts: list[str]) -> Any:
    """A sentence-transformers model's input features (``preprocess``, formerly ``tokenize``)."""
    return (getattr(model, "preprocess", None) or model.tokenize)(texts)
