"""Export a sentence-transformers model folder to ONNX, checked against torch.

The whole model is exported (transformer, pooling, any dense layer, then L2 normalisation), so
``knowledge_base.onnx_model`` only tokenises and runs it. Before the export is published its
vectors for ``PROBE_TEXTS`` (short, long past the sequence length, other scripts) are compared
with torch's; a difference above ``MAX_DIFFERENCE`` refuses it and the embedder keeps using
torch. The folder is written beside its final place and renamed into it, so a process that
finds the folder finds all of it, and two processes exporting at once both succeed.

Uses torch and the ``onnx`` package (the TorchScript exporter): in the command that builds the
index (``kb build-index``, ``make index``), not in the action server.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base.onnx_model import (
    INPUT_FIELDS,
    META_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    ExportMeta,
    OnnxModelError,
    OnnxSentenceModel,
    is_complete,
)
from knowledge_base.sentence_model import (
    EmbedderError,
    load_sentence_transformer,
    sentence_dimension,
    tokenize,
)

logger = logging.getLogger(__name__)

# Largest element-wise difference from torch's normalised vectors that is accepted: measured
# 2.3e-7 for all-MiniLM-L6-v2 on 604 sample-KB questions; float32 round-off, not a new model.
MAX_DIFFERENCE = 1e-4
OPSET = 17
PROBE_TEXTS = (
    "can I bring my laptop in my carry-on?",
    "ok",
    "  How much  shampoo can I take?  ",
    "¿Puedo llevar un encendedor en el avión?",
    "medications " * 200,  # longer than any max_seq_length: checks the truncation
    "wat r the rules 4 liquids 🤔",
)


def _normalised_module(model: Any, inputs: tuple[str, ...]) -> Any:
    import torch

    class Normalised(torch.nn.Module):
        """The sentence-transformers pipeline with positional inputs (what the exporter
        traces) and the L2 normalisation the index relies on."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *arrays: Any) -> Any:
            features = dict(zip(inputs, arrays, strict=True))
            vectors = self.model(features)["sentence_embedding"]
            return torch.nn.functional.normalize(vectors, p=2, dim=1)

    return Normalised()


def _lower_case(model: Any) -> bool:
    return bool(getattr(model[0], "do_lower_case", False))


def _write_export(model: Any, folder: Path, max_seq_length: int) -> None:
    import torch

    tokenizer = getattr(model, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise OnnxModelError("the model has no fast tokenizer (tokenizer.json) to export")
    sample = tokenize(model, ["a sample question", "a"])
    inputs = tuple(name for name in INPUT_FIELDS if name in sample)
    if "input_ids" not in inputs or "attention_mask" not in inputs:
        raise OnnxModelError(f"unexpected tokenizer outputs {sorted(sample)}")
    axes = {name: {0: "batch", 1: "tokens"} for name in inputs}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer warnings about shape checks in the pooling
        torch.onnx.export(
            _normalised_module(model, inputs),
            tuple(sample[name] for name in inputs),
            str(folder / MODEL_FILE),
            input_names=list(inputs),
            output_names=["sentence_embedding"],
            dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    backend.save(str(folder / TOKENIZER_FILE))
    meta = ExportMeta(
        inputs=inputs,
        max_seq_length=max_seq_length,
        lower_case=_lower_case(model),
        dim=sentence_dimension(model),
    )
    (folder / META_FILE).write_text(meta.to_json(), "utf-8")


def largest_difference(model: Any, exported: OnnxSentenceModel) -> float:
    """Largest element-wise difference between torch's and the export's vectors for the
    probe texts."""
    expected = model.encode(
        list(PROBE_TEXTS),
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,  # a process's log is JSON lines (ASKAGENCY_LOG_FORMAT=json)
    )
    return float(np.abs(exported.encode(list(PROBE_TEXTS)) - expected).max())


def export_model(model_path: str, folder: Path, max_seq_length: int) -> Path:
    """The export of ``model_path`` in ``folder`` (made now unless it is already complete).
    Raises ``OnnxModelError`` when the model cannot be exported or its vectors differ."""
    if is_complete(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        model = load_sentence_transformer(model_path, max_seq_length)
    except EmbedderError as exc:
        raise OnnxModelError(f"cannot export: {exc}") from exc
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        try:
            _write_export(model, staging, max_seq_length)
        except OnnxModelError:
            raise
        except Exception as exc:  # an operator the exporter does not know, onnx missing
            raise OnnxModelError(f"ONNX export of {model_path!r} failed: {exc}") from exc
        difference = largest_difference(model, OnnxSentenceModel(staging))
        if difference > MAX_DIFFERENCE:
            raise OnnxModelError(
                f"the ONNX export of {model_path!r} differs from torch by {difference:.2e} "
                f"(> {MAX_DIFFERENCE:.0e}); torch stays in use"
            )
        try:
            os.rename(staging, folder)
        except OSError:
            if not is_complete(folder):  # not another process's finished export: a real error
                raise
        logger.info("exported %s to ONNX in %s (difference %.1e)", model_path, folder, difference)
        return folder
    finally:
        shutil.rmtree(staging, ignore_errors=True)
