"""Retrieval latency, index build time and time-to-live of one FAQ edit.

* Latency: query encode + search (the production ``Retriever.search``), 200
  BANKING77 test queries after 20 warm-up queries, at 1k, 10k and 100k variants.
  1k = the first 13 rows of each BANKING77 category; 10k = all train rows. 100k
  adds synthetic variants: 770 FAQs (each category split in 10), texts recombined
  from two train texts of the category (first half of one + second half of the
  other) and embedded as the normalised mean of their parents' vectors plus noise
  (embedding 90k texts for a latency test would take 10 minutes of CPU). The 100k
  classifier is a nearest-centroid softmax with the same shape and cost as the
  fitted one (fitting 770 classes on 100k rows is not what this measures).
* Build: 10k variants from a cold embedding cache (fresh cache file, model already
  loaded) and again with the warm cache.
* Edit live: change one FAQ at 10k variants (new wording, one new variant) ->
  build with the live bundle as warm start -> save -> RetrieverHandle.get() serves it.

Writes bench/results/retrieval.json and the retrieval keys of latency.json.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from askagency.config import get_settings  # noqa: E402
from bench.common import (  # noqa: E402
    BANKING77,
    banking77_queries,
    banking77_records,
    merge_result,
    read_rows,
    write_result,
)
from knowledge_base.embedder import Embedder  # noqa: E402
from knowledge_base.factory import embedder_for  # noqa: E402
from knowledge_base.index import Bundle, build_bundle, save_bundle  # noqa: E402
from knowledge_base.retriever import Retriever, RetrieverHandle  # noqa: E402
from knowledge_base.types import FaqRecord  # noqa: E402

N_QUERIES = 200
N_WARMUP = 20
SYNTHETIC_SPLIT = 10
SYNTHETIC_PER_FAQ = 130
console = Console()


class SyntheticEmbedder:
    """Real embedder for real texts; precomputed vectors for synthetic texts."""

    def __init__(self, real: Embedder, table: dict[str, np.ndarray]) -> None:
        self.real = real
        self.table = table
        self.model_id = real.model_id
        self.model_path = real.model_path
        self.model_calls = 0

    @property
    def dim(self) -> int:
        return self.real.dim

    def encode(self, texts, use_cache=True):  # type: ignore[no-untyped-def]
        real = [t for t in texts if t not in self.table]
        vectors = (
            dict(zip(real, self.real.encode(real, use_cache=use_cache), strict=True))
            if real
            else {}
        )
        return np.stack([self.table[t] if t in self.table else vectors[t] for t in texts])

    def encode_query(self, text: str) -> np.ndarray:
        return self.real.encode_query(text)


def synthetic_100k(real: Embedder) -> tuple[list[FaqRecord], SyntheticEmbedder]:
    rng = np.random.default_rng(7)
    rows = read_rows(BANKING77 / "train.csv")
    by_cat: dict[str, list[str]] = {}
    for text, cat in rows:
        by_cat.setdefault(cat, []).append(text)
    all_texts = [t for texts in by_cat.values() for t in texts]
    vectors = dict(zip(all_texts, real.encode(all_texts), strict=True))
    table: dict[str, np.ndarray] = {}
    records = []
    for cat, texts in by_cat.items():
        for part in range(SYNTHETIC_SPLIT):
            variants = []
            for j in range(SYNTHETIC_PER_FAQ):
                a, b = rng.choice(len(texts), 2, replace=len(texts) < 2)
                wa, wb = texts[a].split(), texts[b].split()
                text = " ".join(wa[: len(wa) // 2 + 1] + wb[len(wb) // 2 :]) + f" #{part}.{j}"
                vec = vectors[texts[a]] + vectors[texts[b]] + rng.normal(0, 0.05, real.dim)
                table[text] = (vec / np.linalg.norm(vec)).astype(np.float32)
                variants.append(text)
            records.append(
                FaqRecord(
                    id=f"{cat}-{part}",
                    language="en",
                    question=texts[part % len(texts)],
                    answer=f"Answer {cat} {part}",
                    variants=tuple(variants),
                )
            )
    return records, SyntheticEmbedder(real, table)


def centroid_classifier(bundle: Bundle) -> None:
    """Same shape/cost as the fitted classifier, for latency at 100k only."""
    offsets = bundle.faq_offsets
    cent = np.stack(
        [bundle.vectors[offsets[i] : offsets[i + 1]].mean(0) for i in range(len(bundle.faqs))]
    )
    bundle.clf_coef = (10 * cent).astype(np.float32)
    bundle.clf_intercept = np.zeros(len(bundle.faqs), dtype=np.float32)


def latency(retriever: Retriever, queries: list[str]) -> dict[str, float]:
    # Every size is timed with the same queries: without this the second size would find
    # them in the embedder's recent-texts memory and time only the search.
    embedder = retriever.embedder
    getattr(embedder, "real", embedder).forget_recent()
    for q in queries[:N_WARMUP]:
        retriever.search(q, k=5)
    times = []
    for q in queries[N_WARMUP : N_WARMUP + N_QUERIES]:
        t = time.perf_counter()
        retriever.search(q, k=5)
        times.append((time.perf_counter() - t) * 1000)
    encode = []
    getattr(embedder, "real", embedder).forget_recent()
    for q in queries[N_WARMUP : N_WARMUP + 50]:
        t = time.perf_counter()
        retriever.embedder.encode_query(q)
        encode.append((time.perf_counter() - t) * 1000)
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 2),
        "p95_ms": round(float(np.percentile(times, 95)), 2),
        "mean_ms": round(float(np.mean(times)), 2),
        "encode_p50_ms": round(float(np.percentile(encode, 50)), 2),
        "n": len(times),
    }


def main() -> int:
    embedder = embedder_for(get_settings())
    t = time.perf_counter()
    embedder.encode_query("warm up the model")
    model_load_s = time.perf_counter() - t
    records = banking77_records()
    rng = np.random.default_rng(3)
    queries = [q for q, _ in banking77_queries()]
    queries = [queries[i] for i in rng.permutation(len(queries))]
    result: dict[str, object] = {"model_load_and_first_encode_s": round(model_load_s, 2)}

    # Build times at 10k: cold cache (fresh file) then warm cache.
    with tempfile.TemporaryDirectory() as tmp:
        cold = Embedder(embedder.model_path, cache_path=Path(tmp) / "cold.sqlite")
        cold._model, cold._dim = embedder._load(), embedder.dim  # model loaded, cache empty
        t = time.perf_counter()
        bundle_cold = build_bundle(records, cold)
        build_cold = time.perf_counter() - t
        t = time.perf_counter()
        bundle_10k = build_bundle(records, cold)
        build_warm = time.perf_counter() - t
        result["build_10k"] = {
            "variants": bundle_10k.n_rows,
            "cold_cache_s": round(build_cold, 2),
            "cold_timings": bundle_cold.meta["timings"],
            "warm_cache_s": round(build_warm, 2),
            "warm_timings": bundle_10k.meta["timings"],
            "texts_per_s_cold_embed": round(
                bundle_cold.n_rows / bundle_cold.meta["timings"]["embed_s"], 1
            ),
        }

        # One FAQ edit live at 10k.
        index_dir = Path(tmp) / "index"
        save_bundle(bundle_10k, index_dir)
        handle = RetrieverHandle(index_dir, cold)
        live = handle.get()
        new_variant = "my replacement card is still not in my mailbox after ten days"
        edited = [
            replace(r, question=r.question + " (updated)", variants=(*r.variants, new_variant))
            if r.id == "card_arrival"
            else r
            for r in records
        ]
        t = time.perf_counter()
        rebuilt = build_bundle(edited, cold, previous=live.bundle)
        t_build = time.perf_counter() - t
        save_bundle(rebuilt, index_dir)
        t_save = time.perf_counter() - t - t_build
        served = handle.get()
        edit_live = time.perf_counter() - t
        assert served.version == rebuilt.version
        assert served.search(new_variant, k=1)[0].faq_id == "card_arrival"
        result["edit_live_10k"] = {
            "total_s": round(edit_live, 2),
            "build_s": round(t_build, 2),
            "save_s": round(t_save, 2),
            "reload_s": round(edit_live - t_build - t_save, 2),
            "timings": rebuilt.meta["timings"],
            "warm_started": rebuilt.meta["warm_started"],
            "full_refit_classifier_s": round(bundle_10k.meta["timings"]["classifier_s"], 2),
        }

    # Latency at 1k, 10k, 100k variants.
    small = [replace(r, variants=r.variants[:12]) for r in records]
    sizes: dict[str, dict[str, float]] = {}
    for label, bundle in (
        ("1k", build_bundle(small, embedder)),
        ("10k", bundle_10k),
    ):
        sizes[label] = {"variants": bundle.n_rows, **latency(Retriever(bundle, embedder), queries)}
    syn_records, syn_embedder = synthetic_100k(embedder)
    t = time.perf_counter()
    bundle_100k = build_bundle(syn_records, syn_embedder, classifier=False)  # type: ignore[arg-type]
    centroid_classifier(bundle_100k)
    sizes["100k"] = {
        "variants": bundle_100k.n_rows,
        "build_without_embedding_s": round(time.perf_counter() - t, 2),
        **latency(Retriever(bundle_100k, syn_embedder), queries),  # type: ignore[arg-type]
    }
    result["latency"] = sizes

    path = write_result("retrieval.json", result)
    merge_result(
        "latency.json",
        {
            "retrieval_p50_ms": sizes["10k"]["p50_ms"],
            "retrieval_p95_ms": sizes["10k"]["p95_ms"],
            "build_10k_s": result["build_10k"]["cold_cache_s"],  # type: ignore[index]
        },
    )
    table = Table(title="retrieval latency (encode + search, ms)")
    for col in ("variants", "p50", "p95", "mean", "encode p50"):
        table.add_column(col, justify="right")
    for label, row in sizes.items():
        table.add_row(
            f"{label} ({row['variants']})",
            str(row["p50_ms"]),
            str(row["p95_ms"]),
            str(row["mean_ms"]),
            str(row["encode_p50_ms"]),
        )
    console.print(table)
    b: Any = result["build_10k"]
    e: Any = result["edit_live_10k"]
    console.print(
        f"build 10k: cold cache {b['cold_cache_s']} s, warm cache {b['warm_cache_s']} s; "
        f"one edit live in {e['total_s']} s "
        f"(full classifier refit {e['full_refit_classifier_s']} s)"
    )
    console.print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
