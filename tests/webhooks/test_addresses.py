"""No server-side request forgery: webhooks go to public addresses only, checked at
registration and at every delivery, unless the provider allows a network."""

from __future__ import annotations

import ipaddress

import pytest

from ledgerdesk.webhooks.addresses import RefusedAddress, check_url, resolve

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.9", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),  # the cloud metadata service
    ("fe80::1", "link-local"),
    ("100.64.0.1", "100.64.0.0/10"),  # carrier-grade NAT
    ("fd12:3456::1", "private"),  # unique-local
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 (an address refused, not one bound)
    ("::", "unspecified"),
    ("240.0.0.1", "private|reserved"),
    ("198.18.0.1", "private"),  # benchmarking
    ("::ffff:127.0.0.1", "a form of 127.0.0.1"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "a form of 169.254.169.254"),
    ("64:ff9b::a00:1", "a form of 10.0.0.1"),  # NAT64
    ("2002:a00:1::", "a form of 10.0.0.1"),  # 6to4
]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_every_address_family_no_public_receiver_has_is_refused(address: str, why: str) -> None:
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(RefusedAddress, match=why):
        check_url(f"https://{host}/hook")


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_are_taken(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    target = check_url(f"https://{host}:8443/hook?x=1")
    assert (target.port, target.path) == (8443, "/hook?x=1")
    assert str(resolve(target)) == address


def test_a_name_that_resolves_to_a_refused_address_is_refused() -> None:
    target = check_url("https://hooks.example.com/in")
    assert target.host_header == "hooks.example.com"
    with pytest.raises(RefusedAddress, match=r"hooks\.example\.com resolves to 169\.254"):
        resolve(target, resolver=lambda host, port: ["169.254.169.254"])
    # One bad address among good ones refuses the name (DNS answers can be rotated).
    with pytest.raises(RefusedAddress, match="loopback"):
        resolve(target, resolver=lambda host, port: ["93.184.215.14", "127.0.0.1"])
    assert str(resolve(target, resolver=lambda h, p: ["93.184.215.14"])) == "93.184.215.14"

    def nothing(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(RefusedAddress, match="does not resolve"):
        resolve(target, resolver=nothing)


def test_the_allowed_networks_let_a_providers_own_receivers_in() -> None:
    allowed = [ipaddress.ip_network("10.20.0.0/16")]
    with pytest.raises(RefusedAddress, match="https://"):
        check_url("http://10.21.0.5/hook", allowed)
    target = check_url("http://10.20.3.4:8080/hook", allowed)
    assert target.host_header == "10.20.3.4:8080"
    internal = check_url("https://billing.internal/hook", allowed)
    assert str(resolve(internal, allowed, lambda h, p: ["10.20.9.9"])) == "10.20.9.9"
    with pytest.raises(RefusedAddress, match="private"):
        resolve(internal, allowed, lambda h, p: ["10.30.9.9"])


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("ftp://example.com/x", "https://"),
        ("http://example.com/x", "https://"),
        ("https://user:pass@example.com/x", "user name or password"),
        ("https:///x", "no host"),
        ("https://example.com/x#frag", "fragment"),
        ("https://example.com:99999/x", "not a URL"),
        ("https://example.com/" + "a" * 2000, "longer than"),
    ],
)
def test_urls_that_are_not_a_public_https_endpoint_are_refused(url: str, needle: str) -> None:
    with pytest.raises(RefusedAddress, match=needle):
        check_url(url)
