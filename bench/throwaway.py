"""Throw-away stacks for the benchmarks and the end-to-end tests: every process on a free
loopback port and its logs under its own data folder, so several run side by side; a scale
stack on its own PostgreSQL databases and RabbitMQ queue. Kept out of the launcher, which
starts the stack an agency runs (`make run`, `make run-scale`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from askagency.launcher import ScaleConfig, StackConfig
from askagency.ports import free_port
from askagency.secrets import RASA_TOKEN_SECRET, load_or_create_secret
from bench.local_services import exchange_for


def stack_config(
    data_dir: Path,
    rasa_token: str | None = None,
    model_path: Path | None = None,
    **options: Any,
) -> StackConfig:
    """``options`` are the other :class:`StackConfig` fields. ``rasa_token`` None: the data
    folder's generated token, as under ``make run``."""
    if model_path is None:
        raise TypeError("stack_config needs model_path")
    return StackConfig(
        data_dir=data_dir,
        rasa_port=free_port(),
        action_port=free_port(),
        console_port=free_port(),
        analytics_port=free_port(),
        rasa_token=rasa_token or load_or_create_secret(data_dir, RASA_TOKEN_SECRET),
        model_path=model_path,
        log_dir=data_dir / "logs",
        **options,
    )


def scale_config(
    database_url: str, tracker_db: str, amqp_queue: str, replicas: int = 2
) -> ScaleConfig:
    """``replicas`` Rasa and action servers, the app tables in ``database_url`` and Rasa's
    tracker in ``tracker_db`` on the same PostgreSQL server."""
    server = make_url(database_url)
    return ScaleConfig(
        database_url=database_url,
        rasa_ports=[free_port() for _ in range(replicas)],
        action_ports=[free_port() for _ in range(replicas)],
        rasa_api_port=free_port(),
        lb_stats_port=free_port(),
        pg_host=server.host or "127.0.0.1",
        pg_port=server.port or 5432,
        pg_user=server.username or "postgres",
        pg_password=server.password or "",
        tracker_db=tracker_db,
        amqp_queue=amqp_queue,
        amqp_exchange=exchange_for(amqp_queue),
    )
