# Image for the Python 3.11 processes: action server, analytics consumer, console, CLI (the same
# image runs each one with a different command; deploy/docker-compose.yml, deploy/kubernetes/).
# Build from the project root: docker build -f deploy/Dockerfile.app -t askagency-app .
# Checked statically by tests/unit/deploy/test_images.py (every project module the entry points
# import is copied; hadolint). Never built on the development machines (no Docker engine there).
FROM python:3.11-slim-bookworm

# One thread per process for OpenBLAS/OpenMP, as the launcher gives its programs
# (askagency/native_threads.py: spinning thread pools took the cores other processes needed).
# DL3064 flags TOKENIZERS_PARALLELISM for its name only: it holds no secret (none is baked in).
# hadolint ignore=DL3064
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=/app \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
    RASA_TELEMETRY_ENABLED=false \
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    ASKAGENCY_DATA_DIR=/data \
    ASKAGENCY_HEALTH_URL=http://127.0.0.1:5055/health

# The FreeDict Spanish<->English dictionaries (dictd format) that the Spanish retrieval reads from
# /usr/share/dictd (knowledge_base/glossary.py, scripts/ensure-dictionaries.sh). Pinned to the
# versions of the pinned base (Debian 12 "bookworm").
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       dict-freedict-spa-eng=2022.04.21-1 dict-freedict-eng-spa=2022.04.21-1 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 askagency \
    && useradd --system --uid 10001 --gid askagency --home-dir /home/askagency --create-home askagency

WORKDIR /app
COPY pyproject.toml README.md ./
# The CPU build of torch from PyTorch's own CPU index, first and alone: PyPI's Linux torch wheel
# depends on several GB of CUDA packages. `torch==2.13.0` in pyproject.toml is then already
# satisfied by 2.13.0+cpu (a local version label matches a specifier without one), so the
# project install below pulls no CUDA package.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# Every project package the entry points import (actions.server, console, analytics.consumer,
# agencyctl.cli), plus the files they read at run time (templates, static files, sample KB,
# migrations).
COPY agencyctl agencyctl
COPY askagency askagency
COPY knowledge_base knowledge_base
COPY actions actions
COPY console console
COPY analytics analytics
COPY handoff handoff
COPY attachments attachments
RUN pip install -e . \
    && mkdir -p /data \
    && chown askagency:askagency /data

# Numeric, so Kubernetes' runAsNonRoot can verify it (deploy/kubernetes/).
USER 10001:10001
VOLUME ["/data"]
EXPOSE 5055 8080 8081
# One image, several processes: each sets ASKAGENCY_HEALTH_URL to its own /health (the action
# server's is the default); compose and Kubernetes also probe each process directly.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['ASKAGENCY_HEALTH_URL'], timeout=4)"]
CMD ["python", "-m", "actions.server", "--host", "0.0.0.0", "--port", "5055"]
