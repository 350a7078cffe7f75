"""Cost of the write spool (askagency/spool.py): appending a record while the database is down
(fsync per record, the price of not losing it) and replaying a backlog once it is back.

    .venv/bin/python bench/bench_spool.py
Writes bench/results/spool.json. Replays into a migrated SQLite database in a temporary folder
(the embedded profile); the kinds are the real ones (unanswered questions, a ticket, messages).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RECORDS = 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ASKAGENCY_DATA_DIR"] = tmp
        from askagency.paths import embedded_database_url

        os.environ["ASKAGENCY_DATABASE_URL"] = embedded_database_url(tmp)
        from actions.spool_kinds import SPOOL_KINDS
        from askagency.clock import now_utc
        from askagency.migrate import upgrade
        from askagency.spool import Spool
        from knowledge_base.unanswered import unanswered_payload

        upgrade()
        spool = Spool(Path(tmp) / "spool")
        samples = []
        spool.append(
            "handoff_open",
            {
                "conversation_id": "bench",
                "reason": "requested",
                "channel": "rest",
                "language": "en",
                "trigger_text": "a person please",
                "requested_at": now_utc().isoformat(),
            },
            key="bench",
        )
        for i in range(RECORDS):
            if i % 2:
                kind, key = "unanswered", None
                payload = unanswered_payload(f"question number {i}", "low_confidence", "en", "rest")
            else:
                kind, key = "handoff_message", "bench"
                payload = {
                    "conversation_id": "bench",
                    "text": f"message {i}",
                    "sent_at": now_utc().isoformat(),
                }
            start = time.perf_counter()
            spool.append(kind, payload, key=key)
            samples.append((time.perf_counter() - start) * 1e3)
        size = spool.pending_path.stat().st_size
        start = time.perf_counter()
        has_pending = spool.has_pending("bench")
        lookup_ms = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        result = spool.replay(SPOOL_KINDS)
        replay_s = time.perf_counter() - start
        assert has_pending and result.replayed == RECORDS + 1 and result.remaining == 0, result
    samples.sort()
    results = {
        "records": RECORDS + 1,
        "append_median_ms": round(statistics.median(samples), 3),
        "append_p95_ms": round(samples[int(0.95 * len(samples))], 3),
        "spool_file_bytes": size,
        "has_pending_lookup_ms_at_1000": round(lookup_ms, 2),
        "replay_s": round(replay_s, 2),
        "replay_records_per_s": round((RECORDS + 1) / replay_s),
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
        },
    }
    out = ROOT / "bench" / "results" / "spool.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
