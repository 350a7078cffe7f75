"""Query-embedding latency and accuracy per precision (issue 10: retrieval p95 <= 20 ms).

One citizen message = one uncached query through ``Embedder.encode_query``. Compared in the same
process, one after the other (so machine load hits every variant alike):

* latency, single query, p50/p95: ``SentenceTransformer.encode`` (the old path), the embedder's
  direct forward pass in float and int8; torch with 1 and with 2 intra-op threads; the float
  model on ONNX Runtime (``onnx``, the default runtime since issue 19; always one intra-op
  thread); idle and with a CPU-bound neighbour process on one core (as Rasa is on the 2-core
  machine);
* accuracy: BANKING77 top-1/top-3 (3,080 test questions, 10k stored variants) and the sample
  KB's English labelled queries, for int8 mode "none" (float), "queries" (int8 query vectors
  against float stored vectors) and "all" (both int8);
* cosine between the float and the int8 vector, and between torch's and ONNX Runtime's float
  vector, of the same query.

Writes bench/results/query_embedding.json. ``--quick`` uses fewer latency samples.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from askagency.config import get_settings  # noqa: E402
from bench.common import (  # noqa: E402
    LOADS,
    banking77_queries,
    banking77_records,
    latency_summary,
    machine,
    machine_load,
    merge_result,
)
from knowledge_base.embedder import INT8_MODES, Embedder  # noqa: E402
from knowledge_base.evaluate import evaluate, load_labelled  # noqa: E402
from knowledge_base.index import build_bundle  # noqa: E402
from knowledge_base.io import parse_file  # noqa: E402
from knowledge_base.retriever import Retriever  # noqa: E402
from knowledge_base.types import FaqRecord  # noqa: E402

SAMPLE = ROOT / "knowledge_base" / "sample"


def latency(
    embedders: dict[str, Embedder], texts: list[str], threads: int, tag: str
) -> dict[str, Any]:
    """Uncached single-query encodes, variants interleaved text by text."""
    import torch

    out: dict[str, list[float]] = {name: [] for name in embedders}
    out["st_encode_float"] = []
    float_model = embedders["float"]._load(query=True)
    for i, text in enumerate(texts):
        for name, emb in embedders.items():
            query = f"{text} #{i}{name}{tag}"  # never in the recent-texts memory
            emb.query_threads = threads
            started = time.perf_counter()
            emb.encode_query(query)
            out[name].append((time.perf_counter() - started) * 1000)
        torch.set_num_threads(threads)
        started = time.perf_counter()
        with torch.inference_mode():
            float_model.encode(
                [f"{text} #{i}st{tag}"],
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        out["st_encode_float"].append((time.perf_counter() - started) * 1000)
    return {name: latency_summary(values, 2) for name, values in out.items()}


def sample_records() -> list[FaqRecord]:
    parsed = parse_file(SAMPLE / "faqs.jsonl")
    return [
        FaqRecord(
            id=row.id,
            language=row.language,
            question=row.question,
            answer=row.answer,
            category=row.category,
            variants=tuple(row.variants),
            kind=row.kind.value,
        )
        for row in parsed.rows
        if row.language == "en"
    ]


def accuracy(model_path: str, mode: str) -> dict[str, Any]:
    settings = get_settings()
    embedder = Embedder(model_path, cache_path=settings.embedding_cache, int8=mode)  # type: ignore[arg-type]
    result: dict[str, Any] = {}
    for name, records, labelled in (
        ("banking77", banking77_records(), banking77_queries()),
        ("sample_en", sample_records(), load_labelled(SAMPLE / "eval_queries.csv")),
    ):
        bundle = build_bundle(records, embedder)
        retriever = Retriever(bundle, embedder, max_chars=settings.max_message_chars)
        report = evaluate(retriever, labelled, settings, sweep=False, language="en")
        result[name] = {
            "top1": round(report.top1 or 0.0, 4),
            "top3": round(report.top3 or 0.0, 4),
            "answered_correct": round(report.answered_correct, 4),
            "answered_wrong": round(report.answered_wrong, 4),
            "oos_recall": report.oos_recall,
            "n_queries": report.n_queries,
        }
        print(f"{mode:8} {name:10} {result[name]}", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="150 latency samples, not 400")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    settings = get_settings()
    model_path = settings.embedding_model
    embedders = {
        "float": Embedder(model_path, int8="none"),
        "int8": Embedder(model_path, int8="queries"),
        "onnx": Embedder(
            model_path, runtime="auto", export_dir=settings.embedding_cache.parent / "models"
        ),
    }
    texts = [t for t, _ in banking77_queries()][: 150 if args.quick else 400]
    for emb in embedders.values():
        emb.encode_query("warm up")

    probe = texts[:200]
    a = embedders["float"]._run_model(probe, query=True)
    b = embedders["int8"]._run_model(probe, query=True)
    c = embedders["onnx"]._run_model(probe, query=True)
    cosine = np.sum(a * b, axis=1)
    agreement = {
        "cosine_float_vs_int8_p50": round(float(np.median(cosine)), 4),
        "cosine_float_vs_int8_min": round(float(cosine.min()), 4),
        "max_abs_difference_torch_vs_onnx": float(np.abs(a - c).max()),
    }
    print(agreement, flush=True)

    results: dict[str, Any] = {"agreement": agreement, "latency": {}}
    for load in LOADS:
        with machine_load(load):
            for threads in (1, 2):
                key = f"{load}.threads_{threads}"
                results["latency"][key] = latency(embedders, texts, threads, key)
                print(key, results["latency"][key], flush=True)

    if not args.skip_accuracy:
        results["accuracy"] = {mode: accuracy(model_path, mode) for mode in INT8_MODES}
    results["default_int8"] = settings.embedding_int8
    results["machine"] = machine()  # load average: other processes share the 2 cores
    results["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    path = merge_result("query_embedding.json", results)  # --skip-accuracy keeps accuracy
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
