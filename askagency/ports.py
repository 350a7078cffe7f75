"""Free loopback ports for processes that nobody addresses directly: the scale profile's Rasa
and action-server replicas sit behind HAProxy, which is told their ports, so any free port will
do and several stacks can run side by side on one host."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback TCP port nobody listens on right now: the scale profile's replicas behind the
    balancer, and every throw-away stack of the tests and benchmarks (bench/throwaway.py).

    Chosen *below* the kernel's ephemeral range: a port the kernel hands out (bind to port 0)
    can be taken by any outgoing connection between this check and the service binding it,
    which made a whole test stack fail with "address already in use" in CI. Below the range
    only another listener could take it, and the ports this process handed out are not reused.
    """
    top = min(_ephemeral_start(), 32768)
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, top - 12000), top)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:  # a crowded range: let the kernel choose
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
