"""Give freed heap memory back to the operating system after a process's start-up.

Loading the embedding model, the index and the language detector allocates and frees a few
hundred MB of temporaries (weights are read, converted, copied); glibc keeps freed blocks in
its arenas for reuse, so they stay in the process's RSS although nothing uses them.
``malloc_trim(0)`` returns those pages; it is called once after the action server's warm-up
(bench/bench_memory.py measures the effect, docs/scale.md records it). On a libc without it
(musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)


def release_free_memory() -> bool:
    """``malloc_trim(0)`` when glibc provides it; True if it released anything."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))
