"""Where a git remote may point: the classification of a host or an IP address (no I/O here).

FORBIDDEN, whatever the settings: link-local (169.254.0.0/16, fe80::/10) and the cloud metadata
services (169.254.169.254, fd00:ec2::254, 100.100.100.200, 168.63.129.16 and their names), the
unspecified, multicast, broadcast, reserved and documentation ranges, Teredo, and a numeric host
that is no valid address. PRIVATE, allowed only by `TASKSGODZILLA_GIT_ALLOW_PRIVATE_REMOTES`:
loopback (127.0.0.0/8, ::1, `localhost`), RFC 1918, carrier-grade NAT (100.64.0.0/10),
benchmarking (198.18.0.0/15) and unique-local IPv6 (fc00::/7). PUBLIC: the rest.

An IPv6 address that carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible, NAT64
`64:ff9b::/96`, 6to4 `2002::/16`) is classified by the IPv4 address it reaches. A host made only
of numbers is read the way `inet_aton` (and so git, curl and ssh) reads it: `2852039166`,
`0xa9fea9fe`, `0251.0376.0251.0376` and `169.254.43518` are all 169.254.169.254.
"""

from __future__ import annotations

import re
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address


class Reach(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    FORBIDDEN = "forbidden"


METADATA_NAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
_V4_RULES: tuple[tuple[IPv4Network, Reach], ...] = tuple(
    (IPv4Network(net), reach)
    for net, reach in (
        ("100.100.100.200/32", Reach.FORBIDDEN),  # Alibaba Cloud metadata, inside 100.64.0.0/10
        ("168.63.129.16/32", Reach.FORBIDDEN),  # Azure wire server, a public address
        ("0.0.0.0/8", Reach.FORBIDDEN),
        ("169.254.0.0/16", Reach.FORBIDDEN),
        ("192.0.0.0/24", Reach.FORBIDDEN),
        ("192.0.2.0/24", Reach.FORBIDDEN),
        ("192.88.99.0/24", Reach.FORBIDDEN),
        ("198.51.100.0/24", Reach.FORBIDDEN),
        ("203.0.113.0/24", Reach.FORBIDDEN),
        ("224.0.0.0/4", Reach.FORBIDDEN),
        ("240.0.0.0/4", Reach.FORBIDDEN),
        ("127.0.0.0/8", Reach.PRIVATE),
        ("10.0.0.0/8", Reach.PRIVATE),
        ("172.16.0.0/12", Reach.PRIVATE),
        ("192.168.0.0/16", Reach.PRIVATE),
        ("100.64.0.0/10", Reach.PRIVATE),
        ("198.18.0.0/15", Reach.PRIVATE),
    )
)
_V6_RULES: tuple[tuple[IPv6Network, Reach], ...] = tuple(
    (IPv6Network(net), reach)
    for net, reach in (
        ("fd00:ec2::254/128", Reach.FORBIDDEN),  # AWS metadata, inside fc00::/7
        ("::/128", Reach.FORBIDDEN),
        ("fe80::/10", Reach.FORBIDDEN),
        ("fec0::/10", Reach.FORBIDDEN),
        ("ff00::/8", Reach.FORBIDDEN),
        ("100::/64", Reach.FORBIDDEN),
        ("2001:db8::/32", Reach.FORBIDDEN),
        ("2001::/32", Reach.FORBIDDEN),  # Teredo: a tunnel to anywhere
        ("::1/128", Reach.PRIVATE),
        ("fc00::/7", Reach.PRIVATE),
    )
)
_NAT64 = (IPv6Network("64:ff9b::/96"), IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = IPv6Network("::/96")
_NUMERIC_LABEL = re.compile(r"0[xX][0-9A-Fa-f]*|[0-9]+")


def parse_ip(host: str) -> IPv4Address | IPv6Address | None:
    """The address `host` spells (`[v6]`, dotted quad, or any inet_aton form), None for a name."""
    if host.startswith("[") and host.endswith("]"):
        try:
            return IPv6Address(host[1:-1])
        except ValueError:
            return None
    try:
        return ip_address(host)
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    if not all(_NUMERIC_LABEL.fullmatch(label) for label in labels):
        return None
    return _inet_aton(labels)


def _inet_aton(labels: list[str]) -> IPv4Address | None:
    if len(labels) > 4:
        return None
    try:
        numbers = [int(label, 16) if label[:2].lower() == "0x" else int(label, 8 if label[0] == "0" else 10)
                   for label in labels]  # fmt: skip
    except ValueError:  # `09`, or `0x` alone
        return None
    *leading, last = numbers
    if any(n > 0xFF for n in leading) or last >= 1 << (8 * (5 - len(numbers))):
        return None
    value = last
    for index, number in enumerate(leading):
        value |= number << (24 - 8 * index)
    return IPv4Address(value)


def reach_of(address: str | IPv4Address | IPv6Address) -> Reach:
    """The reach of an address (a resolver's answer, or a parsed literal); unparsable is FORBIDDEN."""
    try:
        ip = ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return Reach.FORBIDDEN
    if isinstance(ip, IPv6Address):
        ip = IPv6Address(int(ip))  # drop a zone id: fe80::1%eth0 is link-local all the same
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return reach_of(embedded)
        rules: tuple[tuple[IPv4Network | IPv6Network, Reach], ...] = _V6_RULES
    else:
        rules = _V4_RULES
    for network, reach in rules:
        if ip in network:
            return reach
    return Reach.PUBLIC


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def host_reach(host: str) -> Reach:
    """The reach of a URL's host as written: an address by its range, a name only by what its
    spelling says (`localhost`, a metadata name); other names are PUBLIC until resolved."""
    ip = parse_ip(host)
    if ip is not None:
        return reach_of(ip)
    name = host.removesuffix(".").lower()
    if host.startswith("[") or all(_NUMERIC_LABEL.fullmatch(label) for label in name.split(".")):
        return Reach.FORBIDDEN  # looks like an address and is none
    if name == "localhost" or name.endswith(".localhost"):
        return Reach.PRIVATE
    if name in METADATA_NAMES:
        return Reach.FORBIDDEN
    return Reach.PUBLIC
