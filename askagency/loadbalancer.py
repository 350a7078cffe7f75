"""HAProxy for the scale profile: its configuration, command line and what to read from it.

The profile runs N Rasa replicas and M action servers; channels post to one address, Rasa knows
one action endpoint and the console one Rasa API. HAProxy (Debian package ``haproxy``, installed
by ``scripts/ensure-haproxy.sh``) is that one address: ``deploy/haproxy/haproxy.cfg`` is the
configuration, with a ``# servers: <group>`` marker where this module writes one ``server``
line per replica, and ``${ASKAGENCY_LB_*}`` variables HAProxy itself expands. Why HAProxy, and
the topology: docs/scale.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from askagency.config import PROJECT_ROOT
from askagency.limits import MAX_WEB_BODY_BYTES

HAPROXY_DIR = PROJECT_ROOT / "deploy" / "haproxy"
PUBLIC_CONFIG = HAPROXY_DIR / "haproxy.cfg"  # global, defaults, the public frontend, Rasa
INTERNAL_CONFIG = HAPROXY_DIR / "internal.cfg"  # scale profile: Rasa API, actions, stats
SCALE_CONFIGS = (PUBLIC_CONFIG, INTERNAL_CONFIG)
HAPROXY_ENV = "ASKAGENCY_HAPROXY"  # path of the haproxy binary, when not on PATH or /usr/sbin
SERVERS_MARKER = re.compile(
    r"^(?P<indent>[ \t]*)# servers: (?P<group>[a-z_]+)[ \t]*$", re.MULTILINE
)


class LoadBalancerError(RuntimeError):
    """HAProxy is missing or refuses the configuration; the message says what to do."""


@dataclass(frozen=True)
class Upstream:
    name: str  # server name in HAProxy's stats and logs: rasa-1, actions-2, ...
    port: int  # on 127.0.0.1


@dataclass(frozen=True)
class BalancerPorts:
    """Where the balancer listens: ``bind`` is public (host:port), the others are loopback."""

    bind: str
    rasa_api_port: int
    actions_port: int
    stats_port: int

    @property
    def public_port(self) -> int:
        return int(self.bind.rsplit(":", 1)[1])

    @property
    def health_url(self) -> str:
        """``/health`` of the public frontend as the launcher reaches it (monitor-uri: 200 while a
        Rasa replica is up)."""
        host = self.bind.rsplit(":", 1)[0].strip("[]")
        if host in ("", "0.0.0.0", "::", "*"):  # noqa: S104 (reading a bind address)
            host = "127.0.0.1"
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.public_port}/health"

    @property
    def stats_csv_url(self) -> str:
        return f"http://127.0.0.1:{self.stats_port}/stats;csv"

    def env(self, run_dir: Path) -> dict[str, str]:
        """The variables deploy/haproxy/haproxy.cfg and internal.cfg expand."""
        return {
            **public_env(self.bind, run_dir),
            "ASKAGENCY_LB_RASA_API_PORT": str(self.rasa_api_port),
            "ASKAGENCY_LB_ACTIONS_PORT": str(self.actions_port),
            "ASKAGENCY_LB_STATS_PORT": str(self.stats_port),
        }


def public_env(bind: str, run_dir: Path) -> dict[str, str]:
    """The variables deploy/haproxy/haproxy.cfg expands."""
    return {
        "ASKAGENCY_LB_BIND": bind,
        "ASKAGENCY_LB_RUN_DIR": str(run_dir),
        "ASKAGENCY_LB_MAX_BODY": str(MAX_WEB_BODY_BYTES),
    }


def haproxy_binary(environ: Mapping[str, str] | None = None) -> str:
    """The haproxy executable: ``ASKAGENCY_HAPROXY``, else PATH, else Debian's /usr/sbin."""
    environ = os.environ if environ is None else environ
    configured = environ.get(HAPROXY_ENV, "").strip()
    if configured:
        return configured
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise LoadBalancerError(
            "HAProxy is not installed: the scale profile balances its replicas with it. "
            "Run scripts/ensure-haproxy.sh (apt-get install haproxy) or set ASKAGENCY_HAPROXY."
        )
    return found


def render_config(template: Path, upstreams: Mapping[str, list[Upstream]]) -> str:
    """``template`` with each ``# servers: <group>`` marker replaced by that group's servers."""

    def servers_for(match: re.Match[str]) -> str:
        indent, group = match["indent"], match["group"]
        servers = upstreams.get(group)
        if not servers:
            raise ValueError(f"{template.name}: no servers given for the {group!r} group")
        return "\n".join(f"{indent}server {u.name} 127.0.0.1:{u.port} check" for u in servers)

    return SERVERS_MARKER.sub(servers_for, template.read_text(encoding="utf-8"))


def write_configs(
    upstreams: Mapping[str, list[Upstream]], run_dir: Path, templates: Sequence[Path]
) -> list[Path]:
    """Each template rendered into ``run_dir`` (same file name), in HAProxy's load order."""
    run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for template in templates:
        path = run_dir / f"haproxy-{template.name}"
        path.write_text(render_config(template, upstreams), encoding="utf-8")
        written.append(path)
    return written


def _files(configs: Sequence[Path]) -> list[str]:
    return [arg for config in configs for arg in ("-f", str(config))]


def check_config(
    configs: Sequence[Path], env: Mapping[str, str], binary: str | None = None
) -> None:
    """``haproxy -c -dW``: a configuration HAProxy refuses, or warns about, is reported before
    anything starts."""
    binary = binary or haproxy_binary()
    result = subprocess.run(  # noqa: S603 (our own binary and files)
        [binary, "-c", "-dW", *_files(configs)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise LoadBalancerError(f"HAProxy refuses {' + '.join(map(str, configs))}: {detail}")


def command(configs: Sequence[Path], binary: str | None = None) -> list[str]:
    """Foreground (``-db``), so supervisord (or the caller) watches the process and its log."""
    return [binary or haproxy_binary(), "-db", *_files(configs)]


def server_stats(stats_csv_url: str, timeout: float = 5.0) -> dict[tuple[str, str], dict[str, str]]:
    """HAProxy's per-server counters (``/stats;csv``), keyed by (backend, server): ``status``
    (UP/DOWN), ``stot`` (sessions), ``hrsp_2xx``, ``econ`` (connection errors), ``wretr``
    (retries), ``wredis`` (redispatches)."""
    with urllib.request.urlopen(stats_csv_url, timeout=timeout) as resp:  # noqa: S310 (loopback)
        text = resp.read().decode()
    rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
    return {
        (row["pxname"], row["svname"]): row
        for row in rows
        if row["svname"] not in ("FRONTEND", "BACKEND")
    }


def edge_main(argv: list[str] | None = None) -> int:
    """``python -m askagency.loadbalancer --listen 0.0.0.0:8443 --rasa-port 5005``: HAProxy with
    the public frontend only, in front of ``make run``'s Rasa, for a tunnel or an HTTPS proxy to
    point at (docs/channels.md). Replaces this process with HAProxy."""
    parser = argparse.ArgumentParser(prog="python -m askagency.loadbalancer")
    parser.add_argument("--listen", default="127.0.0.1:8443", help="public address:port")
    parser.add_argument("--rasa-port", type=int, default=5005, help="Rasa on 127.0.0.1")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=PROJECT_ROOT / "var" / "run",
        help="where the rendered configuration and the admin socket go",
    )
    args = parser.parse_args(argv)
    if ":" not in args.listen:
        parser.error("--listen takes address:port")
    env = public_env(args.listen, args.run_dir)
    try:
        configs = write_configs(
            {"rasa": [Upstream("rasa", args.rasa_port)]}, args.run_dir, [PUBLIC_CONFIG]
        )
        check_config(configs, env)
        argv_haproxy = command(configs)
    except LoadBalancerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    os.execve(argv_haproxy[0], argv_haproxy, {**os.environ, **env})  # noqa: S606


if __name__ == "__main__":
    raise SystemExit(edge_main())
