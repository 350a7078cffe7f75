"""A sentence-transformers model run by ONNX Runtime, without torch in the process.

Why (issue 19, docs/scale.md): torch and sentence-transformers were about 300 MB of the action
server's resident memory (after 320 concurrent calls at 10k variants: 915 MB with torch, 597 MB
without, bench/bench_memory.py), and one short citizen query takes about a third less time on ONNX
Runtime (p50 9.5 ms against 14.4 ms on one thread, bench/bench_query_embedding.py). The model
is exported once from the very folder torch would load (``knowledge_base.onnx_export``), whole:
the transformer, the pooling and the normalisation, so the vectors are the model's own (the
export checks them against torch's before it is used) and an index built by either runtime
serves the other.

This module reads an export folder and embeds texts; it never imports torch.

Export folder layout (``EXPORT_FILES``): ``model.onnx`` (input token ids, output normalised
sentence vectors), ``tokenizer.json`` (the model's own fast tokenizer with its normaliser, no
padding or truncation: both are applied here, as sentence-transformers does) and
``export.json`` (what the export was made from and how to feed it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "export.json"
EXPORT_FILES = (MODEL_FILE, TOKENIZER_FILE, META_FILE)
# Bumped when the export's layout or graph changes, so old exports are made again.
EXPORT_FORMAT = 1
# The token arrays a BERT-style tokenizer gives; a model's graph takes some of them
# (``ExportMeta.inputs``: RoBERTa-style models take no token_type_ids).
INPUT_FIELDS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxModelError(RuntimeError):
    """An export folder is missing, incomplete or does not load."""


def export_folder(root: Path, model_id: str) -> Path:
    """Where the export of ``model_id`` (``Embedder.model_id``: model fingerprint and sequence
    length) lives under ``root``: one folder per model and export format."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)
    return Path(root) / f"{safe}-onnx{EXPORT_FORMAT}"


def is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in EXPORT_FILES)


@dataclass(frozen=True)
class ExportMeta:
    """``export.json``: the inputs the graph takes, the sequence length it was exported for,
    whether texts are lower-cased before tokenising (a sentence-transformers option) and the
    vector size."""

    inputs: tuple[str, ...]
    max_seq_length: int
    lower_case: bool
    dim: int
    format: int = EXPORT_FORMAT

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": self.format,
                "inputs": list(self.inputs),
                "max_seq_length": self.max_seq_length,
                "lower_case": self.lower_case,
                "dim": self.dim,
            },
            indent=1,
        )

    @classmethod
    def read(cls, folder: Path) -> ExportMeta:
        try:
            raw = json.loads((folder / META_FILE).read_text("utf-8"))
            return cls(
                inputs=tuple(str(name) for name in raw["inputs"]),
                max_seq_length=int(raw["max_seq_length"]),
                lower_case=bool(raw["lower_case"]),
                dim=int(raw["dim"]),
                format=int(raw["format"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OnnxModelError(f"unreadable {folder / META_FILE}: {exc}") from exc


class OnnxSentenceModel:
    """An exported model in one ONNX Runtime session with one intra-op thread.

    One thread per run: a single query is fastest that way on a shared 2-core machine (as for
    torch, docs/scale.md), and ``session.run`` releases the GIL, so concurrent queries of the
    action server's lookup threads, and the chunks of a large batch (``encode(threads=N)``),
    use the cores side by side without a second copy of the weights.
    """

    def __init__(self, folder: Path) -> None:
        if not is_complete(folder):
            raise OnnxModelError(f"no complete ONNX export in {folder}")
        self.meta = ExportMeta.read(folder)
        if self.meta.format != EXPORT_FORMAT:
            raise OnnxModelError(f"{folder} holds export format {self.meta.format}")
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise OnnxModelError(f"onnxruntime or tokenizers is not installed: {exc}") from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: it warns about unused initialisers
        try:
            self._session = onnxruntime.InferenceSession(
                str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        except Exception as exc:  # corrupt file, unsupported opset
            raise OnnxModelError(f"cannot load the ONNX export in {folder}: {exc}") from exc
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.meta.max_seq_length)
        self.folder = folder

    @property
    def dim(self) -> int:
        return self.meta.dim

    def _feed(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Token arrays padded to the longest text, as sentence-transformers builds them
        (texts stripped, lower-cased when the model says so, truncated to max_seq_length)."""
        prepared = [t.strip().lower() if self.meta.lower_case else t.strip() for t in texts]
        encodings = self._tokenizer.encode_batch(prepared)
        width = max(1, max(len(e.ids) for e in encodings))
        arrays = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in INPUT_FIELDS}
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            arrays["input_ids"][row, :n] = encoding.ids
            arrays["attention_mask"][row, :n] = encoding.attention_mask
            arrays["token_type_ids"][row, :n] = encoding.type_ids
        return {name: arrays[name] for name in self.meta.inputs}

    def _run(self, texts: Sequence[str]) -> np.ndarray:
        (vectors,) = self._session.run(None, self._feed(texts))
        return np.asarray(vectors, dtype=np.float32)

    def encode(self, texts: Sequence[str], batch_size: int = 64, threads: int = 1) -> np.ndarray:
        """Normalised float32 rows for ``texts``: chunks of ``batch_size`` (similar lengths
        together, so little padding), up to ``threads`` chunks at a time."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        batches = [[texts[i] for i in chunk] for chunk in chunks]
        if threads > 1 and len(batches) > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                results = list(pool.map(self._run, batches))
        else:
            results = [self._run(batch) for batch in batches]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for chunk, vectors in zip(chunks, results, strict=True):
            out[chunk] = vectors
        return out


def onnx_runtime_available() -> bool:
    """Whether this environment can run exports (without importing ONNX Runtime yet)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "tokenizers"))
