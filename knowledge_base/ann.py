"""Vector index choice for knowledge bases of any size: exact (flat) up to a size, IVF above it.

A flat inner-product scan is exact and needs no training; on 2 cores it costs about 0.5 ms per
query at 10k 384-dim vectors and 24 ms at 100k (bench/bench_index_scale.py), so it is used up
to ``flat_max_rows`` (50k by default, a few ms).
Above ``flat_max_rows`` an IVF index (k-means cells, ``nprobe`` cells scanned per query) keeps
the per-query cost nearly flat as the KB grows. Its ``nprobe`` is not guessed: it is raised
until recall@1 against the exact index reaches a target on paraphrase-like probe queries, and
the measured recall is stored with the bundle so it is visible, not assumed.

HNSW (``IndexHNSWFlat``, a proximity graph) is offered as the alternative above
``flat_max_rows`` (``ASKAGENCY_INDEX_LARGE_KIND=hnsw``, or ``index_kind="hnsw"``); its
``efSearch`` is tuned against flat exactly like IVF's ``nprobe``. IVF stays the default: on
2 cores HNSW builds several times slower and its graph (about 2*M neighbour ids per row) is
read into each process's private memory: only the vectors part of the file can be mapped
(bench/bench_index_scale.py, docs/scale.md). An IVF index is written as one file whose
inverted lists ``faiss.read_index(..., IO_FLAG_MMAP)`` maps instead of reading, so several
action servers on one host share its pages through the page cache (flat indexes likewise
with IO_FLAG_MMAP_IFC).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

FLAT_MAX_ROWS = 50_000
RECALL_TARGET = 0.99
PROBE_QUERIES = 500
MAX_NPROBE = 256
INDEX_KINDS = ("auto", "flat", "ivf", "hnsw")
LARGE_KINDS = ("ivf", "hnsw")
# HNSW graph degree and build effort: FAISS's common defaults for 384-dim text embeddings;
# efSearch is tuned from EF_SEARCH_START up to MAX_EF_SEARCH against flat.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
EF_SEARCH_START = 16
MAX_EF_SEARCH = 1024


class IndexFileError(RuntimeError):
    """An index file is missing or not a FAISS index."""


@dataclass(frozen=True)
class IndexChoice:
    """What was built and how well it agrees with exact search (stored in the bundle meta)."""

    kind: str  # "flat", "ivf" or "hnsw"
    n_rows: int
    nlist: int = 0
    nprobe: int = 0
    hnsw_m: int = 0
    ef_search: int = 0
    recall_at_1: float = 1.0  # vs flat, on probe queries; 1.0 by definition for flat
    build_s: float = 0.0

    def as_meta(self) -> dict[str, Any]:
        return asdict(self)


def choose_kind(
    n_rows: int, kind: str = "auto", flat_max_rows: int = FLAT_MAX_ROWS, large_kind: str = "ivf"
) -> str:
    """``auto``: exact flat up to ``flat_max_rows``, ``large_kind`` (IVF or HNSW) above."""
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index kind {kind!r}: use one of {', '.join(INDEX_KINDS)}")
    if large_kind not in LARGE_KINDS:
        raise ValueError(f"unknown large index kind {large_kind!r}: use {' or '.join(LARGE_KINDS)}")
    if kind != "auto":
        return kind
    return "flat" if n_rows <= flat_max_rows else large_kind


def ivf_nlist(n_rows: int) -> int:
    """About sqrt(n) cells (the low end of FAISS's 1-16·sqrt(n) guidance: k-means training and
    assignment cost grow with the cell count, and 2 cores must rebuild a 1M index in minutes),
    with at least 39 training rows per cell."""
    return max(1, min(int(math.sqrt(n_rows)), n_rows // 39))


def _contiguous(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)


def flat_index(vectors: np.ndarray) -> Any:
    import faiss

    index = faiss.IndexFlatIP(int(vectors.shape[1]))
    if vectors.shape[0]:
        index.add(_contiguous(vectors))
    return index


def ivf_index(vectors: np.ndarray, nlist: int | None = None, seed: int = 0) -> Any:
    """IVF-Flat with inner product; k-means trained on a sample of at most 64 rows per cell."""
    import faiss

    n, dim = vectors.shape
    nlist = nlist or ivf_nlist(n)
    quantizer = faiss.IndexFlatIP(int(dim))
    index = faiss.IndexIVFFlat(quantizer, int(dim), nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    sample = vectors[np.sort(rng.choice(n, size=min(n, 64 * nlist), replace=False))]
    index.cp.seed = seed
    index.train(_contiguous(sample))
    for start in range(0, n, 100_000):  # bounded temporary copies
        index.add(_contiguous(vectors[start : start + 100_000]))
    return index


def hnsw_index(
    vectors: np.ndarray, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION
) -> Any:
    """HNSW graph over the raw vectors, inner product (rows are L2-normalised)."""
    import faiss

    index = faiss.IndexHNSWFlat(int(vectors.shape[1]), m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    for start in range(0, vectors.shape[0], 100_000):  # bounded temporary copies
        index.add(_contiguous(vectors[start : start + 100_000]))
    return index


def probe_queries(vectors: np.ndarray, n: int = PROBE_QUERIES, seed: int = 1) -> np.ndarray:
    """Paraphrase-like queries built from stored rows, half of each kind:

    * a row moved to cosine ~0.8 in a random direction (a real citizen question and its
      nearest stored variant are typically 0.7-0.9 apart);
    * a row moved 40% of the way towards another stored row: random noise in 384 dimensions
      mostly leaves the subspace the data (and the IVF cells) live in, real rephrasings do not,
      and without these probes nprobe came out too small (recall 0.93 on real questions).
    """
    rng = np.random.default_rng(seed)
    m = min(n, vectors.shape[0])
    rows = np.asarray(vectors[rng.choice(vectors.shape[0], size=m, replace=False)], np.float32)
    noise = rng.standard_normal(rows.shape).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    others = np.asarray(vectors[rng.integers(0, vectors.shape[0], size=m)], np.float32)
    half = m // 2
    queries = np.vstack(
        [rows[:half] + 0.75 * noise[:half], rows[half:] + 0.4 * (others[half:] - rows[half:])]
    )
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def exact_top1(vectors: np.ndarray, queries: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    """Row id of the best inner product for each query (the flat index's answer)."""
    best = np.full(queries.shape[0], -np.inf, dtype=np.float32)
    ids = np.zeros(queries.shape[0], dtype=np.int64)
    for start in range(0, vectors.shape[0], chunk):
        scores = queries @ np.asarray(vectors[start : start + chunk], dtype=np.float32).T
        top = scores.argmax(axis=1)
        value = scores[np.arange(len(top)), top]
        better = value > best
        best[better] = value[better]
        ids[better] = top[better] + start
    return ids


def recall_at_1(index: Any, queries: np.ndarray, exact: np.ndarray) -> float:
    _, found = index.search(_contiguous(queries), 1)
    return float(np.mean(found[:, 0] == exact))


def tune_nprobe(
    index: Any, queries: np.ndarray, exact: np.ndarray, target: float = RECALL_TARGET
) -> tuple[int, float]:
    """Smallest power-of-two nprobe whose recall@1 vs flat reaches ``target``."""
    nprobe, recall = 1, 0.0
    while True:
        index.nprobe = nprobe
        recall = recall_at_1(index, queries, exact)
        if recall >= target or nprobe >= min(MAX_NPROBE, index.nlist):
            return nprobe, recall
        nprobe *= 2


def tune_ef_search(
    index: Any, queries: np.ndarray, exact: np.ndarray, target: float = RECALL_TARGET
) -> tuple[int, float]:
    """Smallest power-of-two efSearch (from EF_SEARCH_START) whose recall@1 vs flat reaches
    ``target``: the HNSW counterpart of ``tune_nprobe``."""
    ef, recall = EF_SEARCH_START, 0.0
    while True:
        index.hnsw.efSearch = ef
        recall = recall_at_1(index, queries, exact)
        if recall >= target or ef >= MAX_EF_SEARCH:
            return ef, recall
        ef *= 2


def build_index(
    vectors: np.ndarray,
    kind: str = "auto",
    flat_max_rows: int = FLAT_MAX_ROWS,
    recall_target: float = RECALL_TARGET,
    large_kind: str = "ivf",
) -> tuple[Any, IndexChoice]:
    """The index for ``vectors`` (L2-normalised rows) and the record of what was chosen."""
    started = time.perf_counter()
    n = int(vectors.shape[0])
    chosen = choose_kind(n, kind, flat_max_rows, large_kind)
    if chosen == "flat" or n < 2:
        index = flat_index(vectors)
        return index, IndexChoice("flat", n, build_s=round(time.perf_counter() - started, 2))
    queries = probe_queries(vectors)
    if chosen == "hnsw":
        index = hnsw_index(vectors)
        ef, recall = tune_ef_search(index, queries, exact_top1(vectors, queries), recall_target)
        return index, IndexChoice(
            "hnsw",
            n,
            hnsw_m=HNSW_M,
            ef_search=ef,
            recall_at_1=round(recall, 4),
            build_s=round(time.perf_counter() - started, 2),
        )
    index = ivf_index(vectors)
    nprobe, recall = tune_nprobe(index, queries, exact_top1(vectors, queries), recall_target)
    return index, IndexChoice(
        "ivf",
        n,
        nlist=int(index.nlist),
        nprobe=nprobe,
        recall_at_1=round(recall, 4),
        build_s=round(time.perf_counter() - started, 2),
    )


def write_index(index: Any, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def read_index(path: Path, nprobe: int = 0, mmap: bool = True, ef_search: int = 0) -> Any:
    """Loads an index file; memory-mapped by default so processes share its pages (for HNSW
    only the stored vectors: the graph is read into private memory)."""
    import faiss

    flags = faiss.IO_FLAG_READ_ONLY
    try:
        if mmap:
            # Flat codes and IVF lists are mapped by different flags, which must not be combined.
            with open(path, "rb") as fh:
                is_flat = fh.read(3) == b"IxF"
            flags |= faiss.IO_FLAG_MMAP_IFC if is_flat else faiss.IO_FLAG_MMAP
        index = faiss.read_index(str(path), flags)
    except (OSError, RuntimeError) as exc:
        raise IndexFileError(f"cannot load vector index {path}: {exc}") from exc
    if nprobe and hasattr(index, "nprobe"):
        index.nprobe = nprobe
    if ef_search and hasattr(index, "hnsw"):
        index.hnsw.efSearch = ef_search
    return index
