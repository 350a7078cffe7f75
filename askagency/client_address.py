"""The address of the client behind our own reverse proxies (one rule for every limiter).

A peer that is one of our trusted proxies (``trusted_proxies``: addresses or CIDR ranges) has
appended the address it saw to ``X-Forwarded-For``; everything left of that may be written by
the client. So the client is the right-most hop that is not a trusted proxy. A header from a
peer that is not trusted is ignored, or any client could choose its own rate-limit key.

Standard library only: used by the Rasa channels (Python 3.10 env) and the console.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_TRUSTED_PROXIES = "127.0.0.1/32,::1/128"


def parse_networks(spec: str | Iterable[str]) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` -> networks; a bad entry raises ValueError naming it."""
    items = spec.split(",") if isinstance(spec, str) else spec
    networks = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: {item!r} is not an address or CIDR range") from exc
    return tuple(networks)


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    address = address.strip()
    if address.startswith("[") and "]" in address:  # "[::1]:443"
        address = address[1 : address.index("]")]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def is_trusted(address: str | None, trusted: tuple[Network, ...]) -> bool:
    ip = _parse(address or "")
    return ip is not None and any(ip in network for network in trusted)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str:
    """The right-most untrusted address of ``peer`` + ``X-Forwarded-For``; the peer when it is
    not a trusted proxy. A malformed hop ends the walk (the last trusted hop is kept)."""
    peer = (peer or "").strip()
    if not forwarded_for or not is_trusted(peer, trusted):
        return peer
    current = peer
    for hop in reversed(forwarded_for.split(",")):
        ip = _parse(hop)
        if ip is None:
            break
        current = str(ip)
        if not any(ip in network for network in trusted):
            return current
    return current
