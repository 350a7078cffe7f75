"""One thread per process for the numeric libraries' own thread pools.

Why: NumPy's OpenBLAS (and OpenMP, MKL where a build uses them) start one thread per core in
every process and keep them spinning between calls. An AskAgency machine runs several
processes side by side (Rasa, the action servers, the console, analytics, a ``kb`` command),
and their arithmetic comes in small pieces: a question against a few thousand rows, a
classifier over a few hundred FAQs. Spread over threads, each piece costs more than it saves,
and the spinning threads take the cores the other processes need. Measured on 2 cores
(2026-12-08, bench/bench_native_threads.py, docs/scale.md): fitting the sample KB's classifier
took 2.2 s on one thread against 4.1 s (8.1 s of CPU) on two, 5.7 s beside a busy core;
``kb calibrate`` 33.9 s against 52.9 s; a citizen's lookup and the scale profile's turns
level (1.1 ms p50 either way; 41.8 against 40.3 turns/s at 8 citizens, 46.2 against 48.0 at
12, within the rounds' spread); the stack suites of ``make test`` 421 s against 562 s. The
work runs side by side where it is meant to: in processes, the action server's lookup threads,
and the embedder's own ONNX session, which is already kept to one thread
(knowledge_base/onnx_model.py).

The libraries read these variables once, when they are loaded: the launcher gives them to every
program it starts (askagency/launcher.py), the images set them (deploy/Dockerfile.*), and the
command line sets them for itself before it imports NumPy (agencyctl/__init__.py). A value the
operator set wins (a machine that runs one big import alone may want more).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping

# OpenBLAS reads OPENBLAS_NUM_THREADS, then OMP_NUM_THREADS; MKL and OpenMP builds (scikit-learn's
# OpenMP loops, PyTorch, TensorFlow's oneDNN) read their own.
THREAD_COUNT_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
ONE_THREAD = "1"


def thread_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The thread-count variables for a process started from ``environ``: one thread each,
    unless ``environ`` already says otherwise."""
    return {name: environ.get(name, ONE_THREAD) for name in THREAD_COUNT_VARIABLES}


def limit_this_process(environ: MutableMapping[str, str] = os.environ) -> None:
    """Sets the variables for this process; effective only before NumPy (or another library
    that reads them) is imported."""
    environ.update(thread_env(environ))
