"""Where a webhook may be delivered: no server-side request forgery.

An endpoint's URL is ``https://`` (``http://`` only to addresses inside the allowed
networks, for receivers of the provider's own). Its host is resolved at every delivery
(DNS can change) and every address it resolves to is checked; the connection is then
made to the address that was checked. Refused, unless inside the allowed networks:
loopback, private, link-local (169.254.169.254 among them), carrier-grade NAT,
unique-local, multicast, reserved, unspecified, documentation and benchmarking ranges,
and the IPv4-mapped, NAT64 and 6to4 forms of any of them.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL = 2000

# What a public receiver never is, beyond what ``ipaddress`` calls private and the like.
_REFUSED = [
    ipaddress.ip_network(text)
    for text in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "240.0.0.0/4",  # reserved
        "64:ff9b:1::/48",  # local-use NAT64
        "fc00::/7",  # unique-local
    )
]


class RefusedAddress(ValueError):
    """A URL or an address webhooks are not delivered to; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked endpoint URL: where to connect, and what to say there (SNI, Host)."""

    scheme: str
    host: str
    port: int
    path: str  # with the query

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def check_url(url: str, allowed: Sequence[IPNetwork] = ()) -> Target:
    """The endpoint ``url`` parsed and checked as far as it can be without DNS; an
    address in the URL itself is checked here too."""
    if len(url) > MAX_URL:
        raise RefusedAddress(f"the URL is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise RefusedAddress(f"not a URL: {exc}") from None
    if parts.scheme not in ("https", "http"):
        raise RefusedAddress("the URL must start with https://")
    if parts.username is not None or parts.password is not None:
        raise RefusedAddress("the URL must not carry a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise RefusedAddress("the URL has no host")
    if parts.fragment:
        raise RefusedAddress("the URL must not have a fragment (#...)")
    written = literal(host)
    if parts.scheme == "http" and (written is None or not _inside(written, allowed)):
        raise RefusedAddress(
            "the URL must start with https:// (http:// only to addresses of the allowed "
            "networks, LEDGERDESK_WEBHOOK_ALLOW_NETWORKS)"
        )
    if written is not None:
        check_address(written, allowed)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def check_address(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> None:
    """Refuse an address no public receiver has (unless it is in ``allowed``)."""
    if _inside(address, allowed):
        return
    why = _refusal(address)
    if why is not None:
        raise RefusedAddress(f"{address} is {why}: webhooks go to public addresses only")


def resolve(
    target: Target, allowed: Sequence[IPNetwork] = (), resolver: Resolver | None = None
) -> IPAddress:
    """The address to connect to for ``target``: its host resolved now, every address
    it has checked (one refused refuses the host: the name is not to be trusted), the
    first one returned."""
    written = literal(target.host)
    if written is not None:
        check_address(written, allowed)
        return written
    try:
        found = (resolver or _system_resolver)(target.host, target.port)
    except OSError as exc:
        raise RefusedAddress(f"{target.host} does not resolve: {exc}") from None
    addresses = [ipaddress.ip_address(text.split("%", 1)[0]) for text in found]
    if not addresses:
        raise RefusedAddress(f"{target.host} does not resolve")
    for address in addresses:
        try:
            check_address(address, allowed)
        except RefusedAddress as exc:
            raise RefusedAddress(f"{target.host} resolves to {exc}") from None
    return addresses[0]


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def literal(host: str) -> IPAddress | None:
    """The address a host is written as, if it is one (no name to resolve)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _inside(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def _refusal(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            why = _refusal(embedded)
            return None if why is None else f"a form of {embedded}, {why}"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    for name, hit in checks:
        if hit:
            return f"a {name} address"
    for network in _REFUSED:
        if address.version == network.version and address in network:
            return f"in {network}, not a public network"
    if not address.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    value = int(address)
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if value >> 32 == 0 and value > 1:  # ::a.b.c.d (deprecated IPv4-compatible)
        return ipaddress.IPv4Address(value)
    return None
