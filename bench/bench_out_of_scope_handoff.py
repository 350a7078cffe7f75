"""What naming the out-of-scope entry that took a question costs the citizen's turn (issue 20).

A handoff with nothing found asks the retriever once more which out-of-scope entry ranked first
(``decision.explained``), so the unanswered queue can file the question apart and the agent can
see the entry's note. Measured on the sample KB (built in memory, as shipped) with the English
development file's out-of-scope questions, through the action server's lookup
(``multilingual.lookup``): each question with the entry named and without (the baseline, in the
same run, alternating which goes first), the question's vector forgotten before each lookup so
both embed it once, as for a new citizen question. Also how many of those questions an entry
took. Writes bench/results/out_of_scope_handoff.json.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from askagency.config import get_settings  # noqa: E402
from bench.bench_spanish import sample_records  # noqa: E402
from bench.common import ROOT, latency_summary, machine, write_result  # noqa: E402
from knowledge_base import multilingual  # noqa: E402
from knowledge_base.decision import decide, for_retriever  # noqa: E402
from knowledge_base.evaluate import OUT_OF_SCOPE, load_labelled  # noqa: E402
from knowledge_base.factory import embedder_for, retriever_over  # noqa: E402
from knowledge_base.types import Decision, Outcome  # noqa: E402

DEV_FILE = ROOT / "knowledge_base" / "sample" / "eval_queries_dev.csv"
ROUNDS = 5  # each question this many times per variant


def main() -> int:
    settings = get_settings()
    embedder = embedder_for(settings)
    retriever = retriever_over(sample_records(), settings, embedder)
    thresholds = for_retriever(settings, retriever)
    questions = [text for text, expected in load_labelled(DEV_FILE) if expected == OUT_OF_SCOPE]

    def lookup(text: str) -> Decision:
        return multilingual.lookup(
            retriever,
            text,
            "en",
            main_language=settings.default_language,
            k=settings.search_top_k,
            decide=lambda hits: decide(hits, thresholds),
        ).decision

    def timed(text: str, named: bool) -> tuple[float, Decision]:
        embedder.forget_recent()
        if named:
            started = time.perf_counter()
            decision = lookup(text)
            return time.perf_counter() - started, decision
        with mock.patch.object(multilingual, "explained", lambda r, t, lang, d: d):
            started = time.perf_counter()
            decision = lookup(text)
            return time.perf_counter() - started, decision

    for text in questions[:20]:  # warm-up: the model, the classifier, the caches
        timed(text, True)
    samples: dict[bool, list[float]] = {True: [], False: []}
    taken: list[str] = []
    unsure = 0
    for round_no in range(ROUNDS):
        for i, text in enumerate(questions):
            order = (True, False) if (i + round_no) % 2 == 0 else (False, True)
            for named in order:
                seconds, decision = timed(text, named)
                samples[named].append(seconds)
                if named and round_no == 0 and decision.outcome == Outcome.HANDOFF:
                    if decision.out_of_scope is not None:
                        taken.append(decision.out_of_scope.faq_id)
                    else:
                        unsure += 1
    result: dict[str, Any] = {
        "benchmark": "the turn's lookup with and without naming the out-of-scope entry",
        "kb": "sample (English and Spanish, 7 out-of-scope entries per language)",
        "questions": f"{len(questions)} out-of-scope questions of eval_queries_dev.csv",
        "rounds": ROUNDS,
        "handed_off_taken_by_an_entry": len(taken),
        "handed_off_no_entry": unsure,
        "entries": {entry: taken.count(entry) for entry in sorted(set(taken))},
        "lookup_with_entry_named": latency_summary([s * 1000 for s in samples[True]]),
        "lookup_baseline": latency_summary([s * 1000 for s in samples[False]]),
        "machine": machine(),
    }
    for name in ("lookup_with_entry_named", "lookup_baseline"):
        print(f"{name}: {result[name]}")
    print(f"taken by an entry {len(taken)}, handed off without one {unsure}")
    print(f"wrote {write_result('out_of_scope_handoff.json', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
