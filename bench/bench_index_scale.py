"""Retrieval at 10k, 100k and 1M question variants: flat vs IVF (issue 10, benchmarks 1 and 3).

Data (384-dim, L2-normalised, like the bundled MiniLM's):
* 10k  - the real BANKING77 train rows (10,003), embedded with the bundled model (embedding
         cache: free after the first run); queries are the real BANKING77 test questions.
* 100k, 1M - those 10k rows plus synthetic variants: real rows moved to cosine ~0.9 in a
         random direction (a paraphrase-like spread), so the neighbourhood structure is real-like;
         embedding a million texts on 2 cores would take hours.
* 1M-random - random normalised vectors: no cluster structure at all, the worst case for IVF
         (nearly every cell is as close as any other), kept as the lower bound.

For each size: index build time, single-query search p50/p95 for flat and IVF (nprobe tuned to
recall@1 >= 0.99 vs flat on paraphrase-like probe queries, see knowledge_base/ann.py; searches
timed with one FAISS thread, as the action server runs them, and flat also with FAISS's default
OpenMP threads, whose tail suffers when other processes hold the cores), the
auto choice, query-embedding cost (real text, uncached) and retrieval = embed + search p50/p95,
and the memory of a fresh process that loads the saved index memory-mapped vs read into RAM.
At the ``--hnsw-sizes`` (default 100k and 1M) HNSW is built and measured the same way (build
time, efSearch tuned to the same recall target, search latency, recall@1, memory), so the
automatic IVF choice is checked against it.
Writes the ``index`` key of bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import (  # noqa: E402
    BANKING77,  # noqa: E402
    banking77_queries,
    latency_summary,
    machine,
    merge_result,
    read_rows,
)
from knowledge_base import ann  # noqa: E402

SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000, "1M-random": 1_000_000}
DEPTH = 20  # candidate rows the retriever asks the index for
DIM = 384


def normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def real_rows(embedder: Any) -> np.ndarray:
    texts = [t for t, _ in read_rows(BANKING77 / "train.csv")]
    return normalise(embedder.encode(texts))


def dataset(label: str, real: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(42)
    n = SIZES[label]
    if label == "10k":
        return real
    out = np.empty((n, DIM), dtype=np.float32)
    if label == "1M-random":
        for start in range(0, n, 100_000):
            block = rng.standard_normal((min(100_000, n - start), DIM), dtype=np.float32)
            out[start : start + block.shape[0]] = normalise(block)
        return out
    out[: real.shape[0]] = real
    for start in range(real.shape[0], n, 100_000):
        m = min(100_000, n - start)
        base = real[rng.integers(0, real.shape[0], size=m)]
        noise = normalise(rng.standard_normal(base.shape, dtype=np.float32))
        out[start : start + m] = normalise(base + 0.5 * noise)
    return out


def time_search(index: Any, queries: np.ndarray, limit_s: float = 20.0) -> dict[str, float]:
    """Single-query latency, as the action server searches (one citizen message at a time)."""
    out = []
    deadline = time.monotonic() + limit_s
    for q in queries:
        started = time.perf_counter()
        index.search(q.reshape(1, -1), DEPTH)
        out.append((time.perf_counter() - started) * 1000)
        if time.monotonic() > deadline and len(out) >= 20:
            break
    return latency_summary(out)


def memory_child(path: str, nprobe: int, mmap: bool, ef_search: int = 0) -> None:
    """Runs in a fresh process: load the index, search, print RSS split anon/file (MB)."""
    before = _rss()
    index = ann.read_index(Path(path), nprobe=nprobe, mmap=mmap, ef_search=ef_search)
    rng = np.random.default_rng(3)
    for _ in range(200):
        index.search(normalise(rng.standard_normal((1, DIM), dtype=np.float32)), DEPTH)
    after = _rss()
    print(json.dumps({k: round((after[k] - before[k]) / 1024, 1) for k in after}))


def _rss() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(line.split()[1])
    return fields


def memory(path: Path, nprobe: int, ef_search: int = 0) -> dict[str, Any]:
    out = {}
    for mmap in (True, False):
        args = ["--memory-child", str(path), str(nprobe), str(int(mmap)), str(ef_search)]
        proc = subprocess.run(
            [sys.executable, __file__, *args],
            capture_output=True,
            text=True,
            timeout=900,
        )
        line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "{}"
        out["mmap" if mmap else "read"] = json.loads(line)
    out["file_mb"] = round(path.stat().st_size / 2**20, 1)
    return out


def bench_hnsw(label: str, vectors: np.ndarray, query_vecs: np.ndarray, work: Path) -> dict:
    """HNSW (the opt-in alternative to IVF): build time, efSearch tuned like nprobe, search
    latency with one FAISS thread, recall@1 vs flat, and the memory of a loading process."""
    import faiss

    index, choice = ann.build_index(vectors, kind="hnsw")
    out: dict[str, Any] = choice.as_meta()
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        out["search"] = time_search(index, query_vecs)
    finally:
        faiss.omp_set_num_threads(threads)
    if label != "1M-random":
        out["recall_at_1_real_queries"] = round(
            ann.recall_at_1(index, query_vecs, ann.exact_top1(vectors, query_vecs)), 4
        )
    path = work / f"{label}.hnsw.faiss"
    ann.write_index(index, path)
    out["memory_mb"] = memory(path, 0, ef_search=choice.ef_search)
    path.unlink()
    return out


def bench_size(
    label: str, vectors: np.ndarray, query_vecs: np.ndarray, work: Path, with_hnsw: bool = False
) -> dict:
    print(f"--- {label}: {vectors.shape[0]:,} rows", flush=True)
    result: dict[str, Any] = {"rows": int(vectors.shape[0])}
    started = time.perf_counter()
    flat = ann.flat_index(vectors)
    result["flat_build_s"] = round(time.perf_counter() - started, 2)
    result["flat_search_omp_default"] = time_search(flat, query_vecs)
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # as the action server searches (one message, one thread)
    try:
        result["flat_search"] = time_search(flat, query_vecs)
    finally:
        faiss.omp_set_num_threads(threads)
    index, choice = ann.build_index(vectors, kind="ivf")
    result["ivf"] = choice.as_meta()
    faiss.omp_set_num_threads(1)
    try:
        result["ivf_search"] = time_search(index, query_vecs)
    finally:
        faiss.omp_set_num_threads(threads)
    if label != "1M-random":  # real questions have no meaningful neighbours in random data
        result["ivf_recall_at_1_real_queries"] = round(
            ann.recall_at_1(index, query_vecs, ann.exact_top1(vectors, query_vecs)), 4
        )
    if with_hnsw:
        result["hnsw"] = bench_hnsw(label, vectors, query_vecs, work)
    result["auto_kind"] = ann.choose_kind(vectors.shape[0])
    result["recall_at_1"] = 1.0 if result["auto_kind"] == "flat" else choice.recall_at_1
    chosen = flat if result["auto_kind"] == "flat" else index
    result["search_p95_ms"] = (
        result["flat_search"] if result["auto_kind"] == "flat" else result["ivf_search"]
    )["p95_ms"]
    path = work / f"{label}.{result['auto_kind']}.faiss"
    ann.write_index(chosen, path)
    result["memory_mb"] = memory(path, choice.nprobe)
    path.unlink()
    print(json.dumps(result, indent=1), flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10k,100k,1M,1M-random")
    parser.add_argument(
        "--hnsw-sizes", default="100k,1M", help="sizes where HNSW is built and measured too"
    )
    parser.add_argument("--memory-child", nargs=4, metavar=("PATH", "NPROBE", "MMAP", "EF"))
    args = parser.parse_args()
    if args.memory_child:
        path, nprobe, mmap, ef = args.memory_child
        memory_child(path, int(nprobe), mmap == "1", int(ef))
        return 0

    from askagency.config import get_settings
    from knowledge_base.factory import embedder_for

    embedder = embedder_for(get_settings())
    real = real_rows(embedder)
    texts = [t for t, _ in banking77_queries()][:300]
    query_vecs = normalise(embedder.encode(texts))  # cached: the search-only series
    # Query embedding as the action server does it: one uncached message at a time.
    embed_ms = []
    for text in texts[:150]:
        started = time.perf_counter()
        embedder.encode_query(text + " ?")
        embed_ms.append((time.perf_counter() - started) * 1000)
    embed = {**latency_summary(embed_ms), "int8": embedder.int8}  # ASKAGENCY_EMBEDDING_INT8
    print(f"query embedding: {embed}", flush=True)

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="askagency-index-bench-") as tmp:
        for label in args.sizes.split(","):
            vectors = dataset(label, real)
            with_hnsw = label in args.hnsw_sizes.split(",")
            result = bench_size(label, vectors, query_vecs, Path(tmp), with_hnsw)
            search = (
                result["flat_search"] if result["auto_kind"] == "flat" else result["ivf_search"]
            )
            # Embedding and search happen one after the other for each message.
            result["retrieval_p50_ms_est"] = round(embed["p50_ms"] + search["p50_ms"], 1)
            result["retrieval_p95_ms_est"] = round(embed["p95_ms"] + search["p95_ms"], 1)
            results[label] = result
            del vectors
    previous: dict[str, Any] = {}
    try:
        previous = json.loads((ROOT / "bench/results/scale.json").read_text()).get("index", {})
    except (OSError, ValueError):
        previous = {}
    merge_result(
        "scale.json",
        {
            "index": {
                **previous,
                **results,
                "query_embedding": embed,
                "flat_max_rows": ann.FLAT_MAX_ROWS,
                "note": "10k real BANKING77 rows; 100k and 1M = 10k real + synthetic paraphrase "
                "vectors around them; 1M-random = random normalised vectors (worst case for IVF). "
                "Embedding 1M texts on 2 cores is too slow. Search = one query, one FAISS thread, "
                "depth 20; retrieval est = embedding p + search p.",
                "machine": machine(),
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
        },
    )
    print(
        f"\n{'size':<6}{'kind':>6}{'nprobe':>8}{'recall@1':>10}{'search p95':>12}{'retr p95':>10}"
    )
    for label, r in results.items():
        print(
            f"{label:<6}{r['auto_kind']:>6}{r['ivf']['nprobe']:>8}{r['recall_at_1']:>10}"
            f"{r['search_p95_ms']:>12}{r['retrieval_p95_ms_est']:>10}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
