# Image for the Python 3.11 processes: action server, analytics consumer, console, proxy, CLI.
# Build from the project root: docker build -f deploy/Dockerfile.app -t askagency-app .
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RASA_TELEMETRY_ENABLED=false \
    TOKENIZERS_PARALLELISM=false PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONPATH=/app
WORKDIR /app
COPY pyproject.toml README.md ./
COPY askagency askagency
COPY knowledge_base knowledge_base
COPY actions actions
COPY console console
COPY analytics analytics
COPY handoff handoff
COPY migrations migrations
COPY alembic.ini ./
COPY deploy deploy
# The CPU build of torch first: an unpinned install pulls several GB of CUDA packages.
RUN pip install --no-cache-dir torch==2.13.0 && pip install --no-cache-dir -e .
