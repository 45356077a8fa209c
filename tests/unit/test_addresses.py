"""Where a git remote may point: every spelling of an address is classified the way the network reads it."""

from __future__ import annotations

import pytest

from app.domain.addresses import Reach, host_reach, parse_ip, reach_of

ALWAYS_REFUSED = [
    "169.254.169.254",  # cloud metadata (AWS, GCP, Azure, OpenStack…)
    "169.254.170.2",
    "2852039166",  # 169.254.169.254 as one decimal number
    "0xa9fea9fe",
    "0251.0376.0251.0376",  # octal
    "0xa9.0xfe.0xa9.0xfe",
    "169.254.43518",
    "[fe80::1]",
    "[FE80::1]",
    "[fd00:ec2::254]",  # AWS metadata over IPv6
    "[::ffff:169.254.169.254]",
    "[::ffff:a9fe:a9fe]",
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of the metadata address
    "[2002:a9fe:a9fe::1]",  # 6to4 of it
    "[::]",
    "0.0.0.0",
    "0",
    "224.0.0.1",
    "255.255.255.255",
    "240.0.0.1",
    "[ff02::1]",
    "100.100.100.200",  # Alibaba Cloud metadata
    "168.63.129.16",  # Azure wire server
    "metadata.google.internal",
    "METADATA.GOOGLE.INTERNAL.",
    "instance-data.ec2.internal",
]
PRIVATE = [
    "127.0.0.1",
    "127.1",
    "0x7f.1",
    "0177.0.0.1",
    "2130706433",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",
    "[fd12:3456::1]",
    "[fc00::1]",
    "localhost",
    "LOCALHOST.",
    "git.localhost",
]
PUBLIC = [
    "github.com",
    "gitlab.example.com",
    "140.82.112.3",
    "[2606:4700::6810:84e5]",
    "8.8.8.8",
    "1.1.1.1",
    "a1",
]


@pytest.mark.parametrize("host", ALWAYS_REFUSED)
def test_link_local_metadata_and_unroutable_addresses_are_forbidden(host: str) -> None:
    assert host_reach(host) is Reach.FORBIDDEN


@pytest.mark.parametrize("host", PRIVATE)
def test_loopback_and_private_ranges_are_private(host: str) -> None:
    assert host_reach(host) is Reach.PRIVATE


@pytest.mark.parametrize("host", PUBLIC)
def test_public_hosts_and_names_pass(host: str) -> None:
    assert host_reach(host) is Reach.PUBLIC


def test_numeric_spellings_are_read_as_inet_aton_reads_them() -> None:
    assert str(parse_ip("0x7f.1")) == "127.0.0.1"
    assert str(parse_ip("2852039166")) == "169.254.169.254"
    assert str(parse_ip("010.0.0.1")) == "8.0.0.1"
    assert str(parse_ip("[::1]")) == "::1"
    assert parse_ip("github.com") is None
    assert parse_ip("1.2.3.4.5") is None  # not an address: a name, which DNS then answers


@pytest.mark.parametrize("host", ["4294967296", "1.2.3.256", "0x1.0x2.0x3.0x100", "09.1.1.1", "1.2.65536"])
def test_numeric_hosts_that_are_no_address_are_forbidden(host: str) -> None:
    # A resolver might still read them somehow; nothing legitimate is spelled this way.
    assert host_reach(host) is Reach.FORBIDDEN


def test_resolved_answers_are_classified_too() -> None:
    assert reach_of("169.254.169.254") is Reach.FORBIDDEN
    assert reach_of("::ffff:10.1.2.3") is Reach.PRIVATE
    assert reach_of("2606:4700::6810:84e5") is Reach.PUBLIC
    assert reach_of("fe80::1%eth0") is Reach.FORBIDDEN
