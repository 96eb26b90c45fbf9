"""Who is calling: the socket peer, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from ledgerdesk.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=65536)
def parse_address(raw: str) -> IPAddress | None:
    # Callers come back: parsing each distinct address once keeps this off the hot path.
    try:
        return ipaddress.ip_address(raw.strip())
    except ValueError:
        return None


def is_trusted(address: IPAddress, proxies: tuple[IPNetwork, ...]) -> bool:
    """Whether ``address`` (an IPv4-mapped one as its IPv4 address) is one of ours."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in proxies)


def client_address(
    peer: str | None, forwarded_for: str | None, proxies: tuple[IPNetwork, ...]
) -> IPAddress | None:
    """The caller's address, or None when it cannot be known.

    X-Forwarded-For is read from the right, skipping trusted proxies: the first hop
    that is not ours is the client. Entries further left were written by the client
    itself and prove nothing.
    """
    address = parse_address(peer) if peer else None
    if address is None or not proxies or not forwarded_for or not is_trusted(address, proxies):
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop_address = parse_address(_without_port(hop))
        if hop_address is None:
            # A malformed hop: nothing to its left can be trusted either.
            return address
        address = hop_address
        if not is_trusted(address, proxies):
            return address
    return address


def _without_port(hop: str) -> str:
    """A hop as some proxies write it, ``203.0.113.7:51234`` or ``[2001:db8::1]:443``,
    without its port; a bare address as it is."""
    hop = hop.strip()
    if hop.startswith("["):
        return hop[1:].partition("]")[0]
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop


@lru_cache(maxsize=65536)
def limit_key(address: IPAddress | None) -> str:
    """The name an address is counted under for rate limits.

    An IPv6 customer is usually given a whole /64, so its addresses are counted
    together; an IPv4-mapped address counts as the IPv4 address it is.
    """
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
