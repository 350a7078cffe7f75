"""Spanish retrieval accuracy on the sample KB's labelled Spanish queries.

Builds the sample KB (English + Spanish FAQs) in memory with the configured embedding model,
then evaluates two labelled Spanish files restricted to the Spanish FAQs:

* ``eval_queries_es.csv``: the issue's test set (never used to write variants or pick weights);
* ``eval_queries_es_holdout.csv``: a second, independent file written before the scorer changed;
* ``eval_queries_es_dev.csv``: the development file (the sample English queries translated into
  Spanish without looking at the other two files), on which the Spanish decision thresholds
  (``language_thresholds``) were calibrated with ``kb evaluate --sweep``.

Each with two scorers:

* ``language_scorer``: what the bot uses (knowledge_base/language_scorer.py: dense + char and
  stemmed-word TF-IDF + the English translations' rows + classifier over the Spanish variants);
* ``nearest_neighbour``: the index's plain nearest variant (``dense_max``), the baseline.

Writes bench/results/spanish.json: per file top1/top3/n and the decision rates; the top-level
``top1``/``top3`` are the language scorer's on eval_queries_es.csv. The scorer's weights are
chosen by bench/bench_spanish_cv.py on the KB's own variants.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, ROOT, machine  # noqa: E402
from knowledge_base.evaluate import evaluate, load_labelled  # noqa: E402
from knowledge_base.factory import embedder_for, language_options  # noqa: E402
from knowledge_base.index import build_bundle  # noqa: E402
from knowledge_base.retriever import Retriever  # noqa: E402
from knowledge_base.types import FaqKind, FaqRecord  # noqa: E402

SAMPLE = ROOT / "knowledge_base" / "sample"
FILES = ("eval_queries_es.csv", "eval_queries_es_holdout.csv", "eval_queries_es_dev.csv")
KEYS = (
    "top1",
    "top3",
    "answer_rate",
    "answered_correct",
    "answered_wrong",
    "oos_precision",
    "oos_recall",
)


def sample_records() -> list[FaqRecord]:
    records = []
    for name in ("faqs.jsonl", "faqs_es.jsonl"):
        for line in (SAMPLE / name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("status", "published") != "published":
                continue
            records.append(
                FaqRecord(
                    id=row["id"],
                    language=row["language"],
                    question=row["question"],
                    answer=row["answer"],
                    category=row.get("category", ""),
                    source_url=row.get("source_url"),
                    variants=tuple(row.get("variants") or ()),
                    translation_group=row.get("translation_group") or row["id"],
                    kind=row.get("kind") or FaqKind.ANSWER.value,
                )
            )
    # Ordered by id, as the index builder reads published FAQs (store.published_records): the
    # classifier's fit depends a little on the order, and the figures should be the CLI's.
    return sorted(records, key=lambda r: r.id)


def main(out: Path = RESULTS / "spanish.json") -> int:
    from askagency.config import get_settings

    settings = get_settings()
    embedder = embedder_for(settings)
    started = time.perf_counter()
    bundle = build_bundle(sample_records(), embedder)
    results: dict[str, object] = {
        "embedding_model": embedder.model_id,
        "spanish_model": settings.embedding_models.get("es") or "(index model)",
        "spanish_faqs": sum(1 for f in bundle.faqs if f.language == "es"),
        "spanish_rows": sum(
            int(bundle.faq_offsets[i + 1] - bundle.faq_offsets[i])
            for i, f in enumerate(bundle.faqs)
            if f.language == "es"
        ),
        "build_s": round(time.perf_counter() - started, 2),
        "machine": machine(),
    }
    scorers = {
        "language_scorer": Retriever(bundle, embedder, languages=language_options(settings)),
        "nearest_neighbour": Retriever(
            bundle,
            embedder,
            scorer="dense_max",
            languages=replace(language_options(settings), main_language="es", language_models={}),
        ),
    }
    files: dict[str, dict[str, object]] = {}
    for name in FILES:
        labelled = load_labelled(SAMPLE / name)
        entry: dict[str, object] = {
            "n": sum(1 for _, e in labelled if e != "none"),
            "n_out_of_scope": sum(1 for _, e in labelled if e == "none"),
        }
        for scorer, retriever in scorers.items():
            report = evaluate(retriever, labelled, settings, sweep=False, language="es")
            entry[scorer] = {
                key: round(value, 4) if isinstance(value, float) else value
                for key, value in json.loads(report.to_json()).items()
                if key in KEYS
            }
            print(
                f"{name:<30} {scorer:<18} top-1 {report.top1:.3f}  top-3 {report.top3:.3f}"
                f"  OOS recall {report.oos_recall:.2f}",
                flush=True,
            )
        files[f"knowledge_base/sample/{name}"] = entry
    results["files"] = files
    chosen = files[f"knowledge_base/sample/{FILES[0]}"]["language_scorer"]
    assert isinstance(chosen, dict)
    results["top1"], results["top3"] = chosen["top1"], chosen["top3"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
