"""BANKING77 accuracy through the same path as `askagency kb evaluate`.

77 categories become 77 FAQs (first train row = canonical question, the other
train rows = variants); the 3,080 test rows are the labelled queries. Writes
bench/results/banking77.json: the default scorer's top1/top3 plus every scorer's. With
``--out NAME`` another file of bench/results: another model's run
(``ASKAGENCY_EMBEDDING_MODEL=<folder> ... --out banking77_mpnet.json``, docs/quality.md) keeps
the default model's result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from askagency.config import get_settings  # noqa: E402
from bench.common import banking77_queries, banking77_records, timer, write_result  # noqa: E402
from knowledge_base.evaluate import evaluate  # noqa: E402
from knowledge_base.factory import embedder_for, language_options  # noqa: E402
from knowledge_base.index import build_bundle  # noqa: E402
from knowledge_base.retriever import DEFAULT_SCORER, SCORERS, Retriever  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="banking77.json", help="result file in bench/results")
    out = parser.parse_args(argv).out
    settings = get_settings()
    embedder = embedder_for(settings)
    records = banking77_records()
    queries = banking77_queries()
    with timer() as build:
        bundle = build_bundle(records, embedder)
    scorers = {}
    for scorer in SCORERS:
        retriever = Retriever(
            bundle,
            embedder,
            scorer=scorer,
            max_chars=settings.max_message_chars,
            languages=language_options(settings),
        )
        report = evaluate(retriever, queries, settings, sweep=False)
        scorers[scorer] = {"top1": report.top1, "top3": report.top3, "eval_s": report.seconds}
    best = scorers[DEFAULT_SCORER]
    path = write_result(
        out,
        {
            "embedding_model": embedder.model_id,
            "top1": best["top1"],
            "top3": best["top3"],
            "n_queries": len(queries),
            "n_faqs": bundle.meta["n_faqs"],
            "n_variants": bundle.meta["n_vectors"],
            "scorer": DEFAULT_SCORER,
            "build_s": round(build["s"], 2),
            "build_timings": bundle.meta["timings"],
            "scorers": scorers,
        },
    )
    table = Table(
        title=f"BANKING77 ({len(queries)} test queries, {bundle.meta['n_vectors']} variants)"
    )
    table.add_column("scorer")
    table.add_column("top-1", justify="right")
    table.add_column("top-3", justify="right")
    for name, row in scorers.items():
        marker = " (default)" if name == DEFAULT_SCORER else ""
        table.add_row(name + marker, f"{row['top1']:.2%}", f"{row['top3']:.2%}")
    console = Console()
    console.print(table)
    console.print(f"build {build['s']:.1f} s (warm embedding cache) -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
