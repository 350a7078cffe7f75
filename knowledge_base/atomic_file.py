"""Replacing a file so that a reader, or a crash, never sees half of it.

The new content goes to a temporary file in the same folder, which then replaces the old one
with ``os.replace`` (atomic on one file system); a failure removes the temporary file and
leaves the old one as it was. Exports (knowledge_base/io.py), the ``.env`` settings a sweep
applies (knowledge_base/tuning.py) and stored classifier fits (knowledge_base/fitted_cache.py)
are written this way. What must also survive a power cut (the index's CURRENT pointer, the
write spool) adds fsyncs of its own.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def replace_atomically(
    path: Path, write: Callable[[IO[Any]], None], *, binary: bool = False
) -> None:
    """Calls ``write`` with a handle on a temporary file beside ``path`` (text: UTF-8, newlines
    as written; ``binary``: bytes), then puts the file in ``path``'s place. The temporary
    file's name starts with a dot and ends in ``.tmp``, so globs for the real files skip it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if binary:
            handle: IO[Any] = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
        with handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
