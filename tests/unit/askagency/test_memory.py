"""askagency.memory: freed heap pages go back to the operating system after start-up."""

from __future__ import annotations

import ctypes.util
import sys
from pathlib import Path

import pytest

from askagency.memory import release_free_memory


def rss_anon_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssAnon in /proc/self/status")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
    reason="malloc_trim is a glibc function; RSS is read from /proc",
)
def test_freed_heap_memory_is_returned_after_trim() -> None:
    # 1000-byte objects come from malloc's heap, not Python's small-object arenas; the last one
    # stays alive so the heap top is in use and glibc cannot shrink the heap on its own.
    blocks = [bytearray(1000) for _ in range(60_000)]
    keep = bytearray(1000)
    del blocks
    before = rss_anon_mb()
    assert release_free_memory() is True
    after = rss_anon_mb()
    assert before - after > 30, (before, after)
    assert len(keep) == 1000
