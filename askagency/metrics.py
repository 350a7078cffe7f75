"""Prometheus metrics: every metric AskAgency exports, defined once (docs/scale.md lists them).

Counters and histograms are updated where things happen (actions, retrieval, handoff, the
analytics consumer); values that already live elsewhere (spool depth, delivery backlog, index
version) are read at scrape time through :func:`register_gauge`, so there is no second copy to
keep in step. Every process runs single-process (the action server too: ``single_process=True``
in actions/server.py), so prometheus-client's multiprocess mode is not needed.

``GET /metrics`` is not public: :func:`bearer_ok` checks ``ASKAGENCY_METRICS_TOKEN`` (the
console also lets an admin in).
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "bearer_ok", "register_gauge", "render"]

# Seconds: a turn's action is tens of ms when the index is warm, seconds on a cold model.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

TURNS = Counter(
    "askagency_turns", "Question turns answered by the FAQ action, by outcome.", ["outcome"]
)
ACTION_SECONDS = Histogram(
    "askagency_action_duration_seconds",
    "Time the action server took to run one action call from Rasa.",
    ["action"],
    buckets=LATENCY_BUCKETS,
)
RETRIEVAL_SECONDS = Histogram(
    "askagency_retrieval_duration_seconds",
    "Time of one knowledge-base lookup (embedding, search and decision).",
    buckets=LATENCY_BUCKETS,
)
HANDOFFS_OPENED = Counter(
    "askagency_handoffs_opened", "Tickets opened for a person, by trigger reason.", ["reason"]
)
ANALYTICS_EVENTS_INGESTED = Counter(
    "askagency_analytics_events_ingested", "Rasa events stored in the analytics tables."
)
ANALYTICS_EVENTS_REJECTED = Counter(
    "askagency_analytics_events_rejected", "Rasa events the analytics consumer quarantined."
)
ANALYTICS_BATCHES = Counter(
    "askagency_analytics_batches", "Batches the analytics consumer ingested."
)

GaugeValue = float | None
GaugeFunction = Callable[[], GaugeValue | Mapping[tuple[str, ...], float]]


class _ScrapeGauges(Collector):
    """Gauges whose value is read when Prometheus scrapes; re-registering a name replaces it
    (each app factory call registers its own, tests build several apps in one process)."""

    def __init__(self) -> None:
        self._gauges: dict[str, tuple[str, tuple[str, ...], GaugeFunction]] = {}
        self._lock = threading.Lock()

    def register(
        self, name: str, documentation: str, function: GaugeFunction, labels: tuple[str, ...]
    ) -> None:
        with self._lock:
            self._gauges[name] = (documentation, labels, function)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            gauges = dict(self._gauges)
        for name, (documentation, labels, function) in sorted(gauges.items()):
            try:
                value = function()
            except Exception:  # noqa: BLE001 - one broken source must not hide the others
                continue
            family = GaugeMetricFamily(name, documentation, labels=list(labels) or None)
            if isinstance(value, Mapping):
                for label_values, sample in value.items():
                    family.add_metric(list(label_values), float(sample))
            elif value is not None:
                family.add_metric([], float(value))
            else:
                continue
            yield family


_SCRAPE_GAUGES = _ScrapeGauges()
REGISTRY.register(_SCRAPE_GAUGES)


def register_gauge(
    name: str, documentation: str, function: GaugeFunction, labels: tuple[str, ...] = ()
) -> None:
    """Export ``function()`` as gauge ``name`` at every scrape (``None``: not exported).

    With ``labels``, ``function`` returns ``{(label values...): value}``."""
    _SCRAPE_GAUGES.register(name, documentation, function, labels)


def render() -> bytes:
    """The exposition text of this process's metrics. Blocking (scrape gauges may query the
    database): call it from a worker thread in async servers."""
    return generate_latest(REGISTRY)


def bearer_ok(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization: Bearer <token>`` header carries the metrics token.
    Always False when no token is configured."""
    if not token:
        return False
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
