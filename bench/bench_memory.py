"""Where the action server's memory goes (issue 10: <= 700 MB RSS at 10k variants).

Each step runs in a fresh Python process that does what ``python -m actions.server`` does, in
the same order, and prints RSS (total / anonymous = private / file-backed = shared pages such
as torch's libraries and memory-mapped index files) after every step:

  interpreter -> actions server imports (rasa-sdk, sanic, our actions) -> the index bundle
  (10k BANKING77 variants, memory-mapped) -> the embedding runtime (ONNX Runtime, the default,
  or torch + sentence-transformers; float or int8 query model) -> the first query -> lingua
  with the configured languages.

Then lingua alone per configuration (12 / 2 languages, high / low accuracy mode): RSS it adds
and its accuracy on the sample's labelled English and Spanish queries (the method of
docs/languages.md: no hint, so detection alone decides). ``--env`` runs the steps with
``MALLOC_ARENA_MAX=2`` as the launcher sets it too.

Then the real ``python -m actions.server`` per runtime (``after_load``): RSS after its start-up
and after ``LOAD_TURNS`` FAQ action calls from ``LOAD_CLIENTS`` concurrent clients, as Rasa
posts them (the issue's figure is the server under load, not only at rest).
Writes bench/results/memory.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAMPLE = ROOT / "knowledge_base" / "sample"
ARENAS = {"MALLOC_ARENA_MAX": "2"}
LOAD_TURNS = 320
LOAD_CLIENTS = 8
ALL_LANGUAGES = ["en", "es", "fr", "de", "pt", "it", "zh", "vi", "ko", "tl", "ar", "ru"]


def rss() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            fields[key] = round(int(line.split()[1]) / 1024, 1)
    return fields


def steps_child(index_dir: str, int8: str, languages: list[str], runtime: str) -> None:
    """The action server's start-up, one step at a time (runs in a fresh process)."""
    out: list[dict[str, Any]] = [{"step": "interpreter", **rss()}]

    def mark(step: str) -> None:
        out.append({"step": step, **rss()})

    os.environ["ASKAGENCY_INDEX_DIR"] = index_dir
    os.environ["ASKAGENCY_EMBEDDING_INT8"] = int8
    os.environ["ASKAGENCY_EMBEDDING_RUNTIME"] = runtime
    os.environ["ASKAGENCY_DETECT_LANGUAGES"] = json.dumps(languages)
    from rasa_sdk.executor import ActionExecutor

    import actions.server  # noqa: F401  (rasa-sdk, sanic, the console-free action imports)

    ActionExecutor().register_package("actions")
    mark("server imports + actions registered")
    from knowledge_base.index import load_current

    bundle = load_current(index_dir)
    mark(f"index bundle loaded ({bundle.n_rows} rows)")
    if runtime == "torch" or int8 != "none":
        import sentence_transformers  # noqa: F401
        import torch  # noqa: F401

        mark("torch + sentence-transformers imported")
    else:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401

        mark("onnxruntime + tokenizers imported")
    from actions import kb

    kb.warm_up()
    mark(f"model loaded + first query (runtime={runtime}, int8={int8})")
    assert ("torch" in sys.modules) == (runtime == "torch" or int8 != "none"), "torch imported"
    for i in range(200):
        kb.lookup(f"how do I top up my card {i}", "en")
    mark("200 queries")
    from askagency.config import get_settings
    from knowledge_base import language

    detector = language.get_detector(get_settings().detect_languages)
    if detector is not None:
        detector.warm_up()
        for text in ("¿Cómo renuevo mi pasaporte?", "Wie erneuere ich meinen Pass?"):
            detector.detect(text)
    mark(f"lingua warm ({len(languages)} languages)")
    from askagency.memory import release_free_memory

    release_free_memory()
    mark("malloc_trim (as actions.server does after warm-up)")
    print(json.dumps(out))


def lingua_child(languages: list[str], low_accuracy: bool) -> None:
    """RSS lingua adds and its decisions on the sample's labelled queries (fresh process)."""
    from knowledge_base import language

    before = rss()
    detector = language.LanguageDetector(languages, low_accuracy=low_accuracy)
    started = time.perf_counter()
    detector.warm_up()
    for text in ("¿Cómo renuevo mi pasaporte?", "Wie erneuere ich meinen Pass?"):
        detector.detect(text)
    load_s = time.perf_counter() - started
    after = rss()
    result: dict[str, Any] = {
        "languages": len(languages),
        "low_accuracy": low_accuracy,
        "added_rss_mb": round(after["VmRSS"] - before["VmRSS"], 1),
        "added_anon_mb": round(after["RssAnon"] - before["RssAnon"], 1),
        "load_s": round(load_s, 2),
    }
    for lang, files in (
        ("en", ["eval_queries.csv"]),
        ("es", ["eval_queries_es.csv", "eval_queries_es_holdout.csv"]),
    ):
        texts: list[str] = []
        for name in files:
            if (SAMPLE / name).exists():
                with (SAMPLE / name).open(encoding="utf-8", newline="") as fh:
                    texts += [row["text"] for row in csv.DictReader(fh)]
        counts = {"queries": len(texts), "detected_right": 0, "detected_wrong": 0, "fallback": 0}
        for text in texts:
            choice = language.choose(text, None, "en", detect=detector.detect)
            if choice.source != "detected":
                counts["fallback"] += 1
            elif choice.language == lang:
                counts["detected_right"] += 1
            else:
                counts["detected_wrong"] += 1
        result[lang] = counts
    print(json.dumps(result))


def run_child(args: list[str], env: dict[str, str] | None = None) -> Any:
    proc = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {args} failed: {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def build_index(folder: Path) -> None:
    """BANKING77 (10k variants) as the KB, saved like `askagency kb build-index` does."""
    from askagency.config import get_settings
    from bench.common import banking77_records
    from knowledge_base.factory import embedder_for
    from knowledge_base.index import build_bundle, save_bundle

    save_bundle(build_bundle(banking77_records(), embedder_for(get_settings())), folder)


def server_under_load(index_dir: str, runtime: str) -> dict[str, Any]:
    """The real action server (default settings but the runtime, 10k index): RSS after start-up
    and after LOAD_TURNS FAQ calls from LOAD_CLIENTS threads."""
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    from askagency.config import get_settings
    from askagency.ports import free_port
    from askagency.secrets import ACTION_SECRET_ENV, ACTION_SECRET_HEADER
    from bench.common import banking77_queries, status_kb
    from bench.stack_client import action_call

    def rss_mb(pid: int) -> float:
        kb = status_kb(pid, "VmRSS")
        if not kb:
            raise RuntimeError(f"action server ({runtime}) is gone: no VmRSS")
        return round(kb / 1024, 1)

    from knowledge_base.factory import embedder_for

    folder = embedder_for(get_settings()).export_folder
    assert folder is not None
    exports = folder.parent
    port = free_port()
    secret = "bench-memory-secret-0123456789abcdef"
    with tempfile.TemporaryDirectory(prefix="askagency-mem-server-") as data_dir:
        from askagency.migrate import upgrade
        from askagency.paths import embedded_database_url

        database_url = embedded_database_url(data_dir)
        upgrade(database_url)  # the action server writes the unanswered queue
        env = {
            **os.environ,
            **ARENAS,
            "ASKAGENCY_DATA_DIR": data_dir,
            "ASKAGENCY_INDEX_DIR": index_dir,
            "ASKAGENCY_DATABASE_URL": database_url,
            "ASKAGENCY_EMBEDDING_RUNTIME": runtime,
            # the export made by build_index (a runtime that finds none would make its own)
            "ASKAGENCY_EMBEDDING_EXPORT_DIR": str(exports),
            ACTION_SECRET_ENV: secret,
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "actions.server", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"action server ({runtime}) exited")
                try:
                    with urllib.request.urlopen(f"{base}/health", timeout=2) as reply:
                        if reply.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"action server ({runtime}) did not start")
                time.sleep(0.5)
            time.sleep(3)  # the warm-up (model, lingua, malloc_trim) runs after /health
            started = rss_mb(server.pid)
            questions = [text for text, _ in banking77_queries()][:LOAD_TURNS]

            def turn(item: tuple[int, str]) -> int:
                i, text = item
                body = json.dumps(
                    action_call("action_answer_faq", text, "faq", sender=f"load-{i}")
                ).encode()
                request = urllib.request.Request(
                    f"{base}/webhook",
                    data=body,
                    headers={"Content-Type": "application/json", ACTION_SECRET_HEADER: secret},
                )
                with urllib.request.urlopen(request, timeout=60) as reply:
                    return reply.status

            began = time.perf_counter()
            with ThreadPoolExecutor(LOAD_CLIENTS) as pool:
                statuses = list(pool.map(turn, enumerate(questions)))
            seconds = time.perf_counter() - began
            return {
                "runtime": runtime,
                "rss_after_start_mb": started,
                "rss_after_load_mb": rss_mb(server.pid),
                "turns": len(statuses),
                "ok": statuses.count(200),
                "clients": LOAD_CLIENTS,
                "turns_per_s": round(len(statuses) / seconds, 1),
            }
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps-child", nargs=4, metavar=("INDEX_DIR", "INT8", "LANGS", "RUNTIME"))
    parser.add_argument("--lingua-child", nargs=2, metavar=("LANGS", "LOW"))
    parser.add_argument("--skip-lingua", action="store_true")
    parser.add_argument("--only-lingua", action="store_true")
    parser.add_argument("--skip-load", action="store_true", help="no real action server run")
    args = parser.parse_args()
    if args.steps_child:
        index_dir, int8, langs, runtime = args.steps_child
        steps_child(index_dir, int8, json.loads(langs), runtime)
        return 0
    if args.lingua_child:
        langs, low = args.lingua_child
        lingua_child(json.loads(langs), low == "1")
        return 0

    from bench.common import merge_result

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="askagency-mem-bench-") as tmp:
        if not args.only_lingua:
            build_index(Path(tmp))
        runs = (
            {}
            if args.only_lingua
            else {
                # What the launcher starts by default: ONNX Runtime, float, 12 languages, 2
                # malloc arenas; then the torch runtime (the default before issue 19's ONNX
                # step) as the baseline of the same run.
                "default": ("none", ALL_LANGUAGES, ARENAS, "auto"),
                "torch_12_languages": ("none", ALL_LANGUAGES, ARENAS, "torch"),
                "torch_12_languages_no_arena_limit": ("none", ALL_LANGUAGES, {}, "torch"),
                "int8_queries_12_languages": ("queries", ALL_LANGUAGES, ARENAS, "torch"),
                "onnx_2_languages": ("none", ["en", "es"], ARENAS, "auto"),
            }
        )
        results["steps"] = {}  # configurations of earlier runs are not carried over
        for name, (int8, langs, env, runtime) in runs.items():
            results["steps"][name] = run_child(
                ["--steps-child", tmp, int8, json.dumps(langs), runtime], env
            )
            print(name, json.dumps(results["steps"][name], indent=1), flush=True)
        if not args.only_lingua and not args.skip_load:
            results["after_load"] = [server_under_load(tmp, rt) for rt in ("auto", "torch")]
            print(json.dumps(results["after_load"], indent=1), flush=True)
    if not args.skip_lingua:
        results["lingua"] = []
        for langs in (ALL_LANGUAGES, ["en", "es"]):
            for low in (False, True):
                row = run_child(["--lingua-child", json.dumps(langs), str(int(low))])
                results["lingua"].append(row)
                print(row, flush=True)
    from bench.common import machine

    results["machine"] = machine()
    results["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    path = merge_result("memory.json", results)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
