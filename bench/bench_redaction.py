"""CPU cost of one ``redact()`` call on 2,000-character messages: ordinary vs crafted.

Why: the old international-phone pattern backtracked through tens of thousands of digit splits
per "+1" followed by 34 digits (review finding L3): about 100 ms per crafted message per call,
and a message is redacted two or three times. The patterns are now linear; this prints the
figures the unit test (tests/unit/askagency/test_privacy.py) only checks as a ratio.

    .venv/bin/python bench/bench_redaction.py
Writes bench/results/redaction.json.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from askagency.privacy import redact  # noqa: E402
from bench.common import write_result  # noqa: E402

LENGTH = 2000
RUNS = 50
MESSAGES = {
    "ordinary_text": "Can I bring liquids in my carry-on bag through security? " * 40,
    "ordinary_digits": "call me at +1 202 555 0143 about card 4111 1111 1111 1111 " * 40,
    "crafted_phone_l3": ("+1" + "1" * 34 + " ") * 54,  # the review's input
    "crafted_phone_zeros": ("+1" + "0" * 34 + " ") * 54,
    "crafted_email": ("x@" + "a." * 40 + " ") * 24,
    "crafted_iban": ("DE89" + " 1" * 40 + " ") * 23,
    "crafted_keywords": ("passport " + "is " * 100) * 6,
}


def cpu_ms(text: str) -> dict[str, float]:
    samples = []
    for _ in range(RUNS):
        start = time.process_time()
        redact(text)
        samples.append((time.process_time() - start) * 1000)
    return {"median_ms": round(statistics.median(samples), 3), "max_ms": round(max(samples), 3)}


def main() -> None:
    results = {name: cpu_ms(text[:LENGTH]) for name, text in MESSAGES.items()}
    for name, figures in results.items():
        print(f"{name:22} median {figures['median_ms']:8.3f} ms   max {figures['max_ms']:8.3f} ms")
    path = write_result("redaction.json", {"message_chars": LENGTH, "runs": RUNS, **results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
