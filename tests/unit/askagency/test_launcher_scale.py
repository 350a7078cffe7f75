"""The launcher's process plan (embedded and scale profile, the environment its children get).
The scale profile's load balancer itself: tests/unit/askagency/test_loadbalancer.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from askagency.launcher import (
    EMBEDDED_ENDPOINTS,
    SCALE_ENDPOINTS,
    ScaleConfig,
    StackConfig,
    service_specs,
)
from askagency.loadbalancer import INTERNAL_CONFIG, PUBLIC_CONFIG
from askagency.native_threads import THREAD_COUNT_VARIABLES
from bench.throwaway import scale_config

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/askagency"


def _cfg(
    tmp_path: Path, scale: ScaleConfig | None, extra_env: dict[str, str] | None = None
) -> StackConfig:
    return StackConfig(
        data_dir=tmp_path,
        rasa_port=5005,
        action_port=5055,
        console_port=8080,
        rasa_token="t",
        model_path=tmp_path / "models",
        log_dir=tmp_path / "logs",
        with_console=False,
        scale=scale,
        extra_env=extra_env or {},
    )


def test_embedded_profile_is_unchanged(tmp_path: Path) -> None:
    specs = service_specs(_cfg(tmp_path, None))
    assert [s.name for s in specs] == ["actions", "analytics", "rasa"]
    rasa = specs[-1]
    assert (
        str(EMBEDDED_ENDPOINTS) in rasa.argv and rasa.argv[rasa.argv.index("--port") + 1] == "5005"
    )
    assert "--source" not in specs[1].argv
    assert "ASKAGENCY_DATABASE_URL" not in specs[0].env


def test_scale_profile_runs_replicas_behind_haproxy(tmp_path: Path) -> None:
    scale = ScaleConfig(
        database_url=PG,
        rasa_ports=[7001, 7002, 7003],
        action_ports=[7101, 7102],
        rasa_api_port=7200,
        lb_stats_port=7300,
    )
    specs = {s.name: s for s in service_specs(_cfg(tmp_path, scale))}
    assert list(specs) == [
        "actions-1",
        "actions-2",
        "analytics",
        "rasa-1",
        "rasa-2",
        "rasa-3",
        "lb",
    ]
    for i, port in enumerate([7001, 7002, 7003], 1):
        argv = specs[f"rasa-{i}"].argv
        assert argv[argv.index("--port") + 1] == str(port)
        assert argv[argv.index("--endpoints") + 1] == str(SCALE_ENDPOINTS)
        # Replicas are reached through the balancer only, whatever the public interface.
        assert argv[argv.index("--interface") + 1] == "127.0.0.1"
    # One HAProxy: the public frontend on the usual port, the internal ones on loopback.
    lb = specs["lb"]
    run_dir = tmp_path / "run"
    assert lb.argv[1:] == [
        "-db",
        "-f",
        str(run_dir / f"haproxy-{PUBLIC_CONFIG.name}"),
        "-f",
        str(run_dir / f"haproxy-{INTERNAL_CONFIG.name}"),
    ]
    assert lb.env["ASKAGENCY_LB_BIND"] == "127.0.0.1:5005"
    assert lb.env["ASKAGENCY_LB_ACTIONS_PORT"] == "5055"
    assert lb.env["ASKAGENCY_LB_RASA_API_PORT"] == "7200"
    assert lb.health_url == "http://127.0.0.1:5005/health"
    env = specs["rasa-1"].env
    # Rasa's action endpoint is the balancer; the console reaches Rasa's API on its loopback port.
    assert env["ASKAGENCY_ACTION_URL"] == "http://127.0.0.1:5055/webhook"
    assert env["ASKAGENCY_RASA_URL"] == "http://127.0.0.1:7200"
    assert env["ASKAGENCY_DATABASE_URL"] == PG and env["ASKAGENCY_PG_DB"] == "askagency_tracker"
    assert env["ASKAGENCY_REDIS_PORT"] == "6379" and env["ASKAGENCY_AMQP_QUEUE"]
    # Rasa (endpoints.scale.yml) and the consumer read the same exchange; Rasa's by default.
    assert env["ASKAGENCY_AMQP_EXCHANGE"] == "rasa-exchange"
    assert specs["analytics"].env["ASKAGENCY_AMQP_EXCHANGE"] == "rasa-exchange"
    assert specs["analytics"].argv[-2:] == ["--source", "rabbitmq"]


def test_a_published_scale_profile_publishes_only_the_balancer(tmp_path: Path) -> None:
    scale = ScaleConfig(database_url=PG, rasa_ports=[7001], action_ports=[7101])
    cfg = _cfg(tmp_path, scale)
    cfg.rasa_interface = "0.0.0.0"  # noqa: S104 (what an operator sets to publish)
    specs = {s.name: s for s in service_specs(cfg)}
    assert specs["lb"].env["ASKAGENCY_LB_BIND"] == "0.0.0.0:5005"
    argv = specs["rasa-1"].argv
    assert argv[argv.index("--interface") + 1] == "127.0.0.1"


def test_every_variable_of_the_scale_endpoints_file_is_set(tmp_path: Path) -> None:
    """Rasa stops at start-up on an unset ${VAR}: the launcher must provide each one."""
    import re

    lines = [
        ln for ln in SCALE_ENDPOINTS.read_text().splitlines() if not ln.lstrip().startswith("#")
    ]
    wanted = set(re.findall(r"\$\{(\w+)\}", "\n".join(lines)))
    scale = ScaleConfig(database_url=PG, rasa_ports=[1], action_ports=[2])
    env = next(s for s in service_specs(_cfg(tmp_path, scale)) if s.name == "rasa-1").env
    assert wanted and wanted <= set(env), wanted - set(env)


def test_scale_config_from_env_and_validation() -> None:
    cfg = ScaleConfig.from_env(
        3,
        1,
        environ={
            "ASKAGENCY_PG_HOST": "db",
            "ASKAGENCY_PG_PASSWORD": "pw",
            "ASKAGENCY_RABBITMQ_USER": "u",
        },
    )
    assert len(cfg.rasa_ports) == 3 and len(cfg.action_ports) == 1
    assert cfg.database_url == "postgresql+psycopg://postgres:pw@db:5432/askagency"
    assert cfg.amqp_url.startswith("amqp://u:guest@127.0.0.1:5672/")
    with pytest.raises(ValueError, match="lower-case"):
        ScaleConfig(database_url=PG, rasa_ports=[1], action_ports=[2], tracker_db="Bad-Name")
    with pytest.raises(ValueError, match="PostgreSQL"):
        ScaleConfig(database_url="sqlite:///x.db", rasa_ports=[1], action_ports=[2])


def test_scale_config_for_a_database_takes_the_server_from_its_url() -> None:
    url = "postgresql+psycopg://app:secret@db.internal:6543/askagency_app"
    scale = scale_config(url, "askagency_tracker_x", "queue_x", replicas=3)
    assert (scale.pg_host, scale.pg_port, scale.pg_user, scale.pg_password) == (
        "db.internal",
        6543,
        "app",
        "secret",
    )
    assert (scale.database_url, scale.tracker_db, scale.amqp_queue) == (
        url,
        "askagency_tracker_x",
        "queue_x",
    )
    assert (len(scale.rasa_ports), len(scale.action_ports)) == (3, 3)
    assert scale.amqp_exchange == "queue_x.events"  # its own, not Rasa's shared default


# The launcher bounds glibc's malloc arenas for its children (docs/scale.md, action-server
# memory), unless the operator set MALLOC_ARENA_MAX explicitly.


def test_children_get_two_malloc_arenas_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    specs = {s.name: s for s in service_specs(_cfg(tmp_path, None))}
    assert specs["actions"].env["MALLOC_ARENA_MAX"] == "2"
    assert {s.env.get("MALLOC_ARENA_MAX") for s in specs.values()} == {"2"}


def test_an_explicit_malloc_arena_value_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert service_specs(_cfg(tmp_path, None))[0].env["MALLOC_ARENA_MAX"] == "4"
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    cfg = _cfg(tmp_path, None, {"MALLOC_ARENA_MAX": "1"})
    assert service_specs(cfg)[0].env["MALLOC_ARENA_MAX"] == "1"


# ... and keeps OpenBLAS/OpenMP to one thread in each (askagency/native_threads.py), unless the
# operator set a count.


def test_children_get_one_numeric_thread_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in THREAD_COUNT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    cfg = replace(_cfg(tmp_path, None), with_console=True)
    specs = service_specs(cfg)
    assert {s.name for s in specs} >= {"rasa", "actions", "analytics", "console"}
    for spec in specs:
        assert {name: spec.env.get(name) for name in THREAD_COUNT_VARIABLES} == dict.fromkeys(
            THREAD_COUNT_VARIABLES, "1"
        ), spec.name


def test_an_explicit_thread_count_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    env = service_specs(_cfg(tmp_path, None))[0].env
    assert (env["OPENBLAS_NUM_THREADS"], env["OMP_NUM_THREADS"]) == ("4", "1")
