"""Which hosts the server may connect to on a developer's behalf (flotta.outbound), and the
guard on every delivery of a sink."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

import pytest

from flotta.adapters.sinks import GuardedSink, open_sink, sink_destinations
from flotta.outbound import DestinationRefused, IPAddress, Outbound, address_of, url_destination
from flotta.ports.sinks import SinkError
from flotta.settings import Settings
from flotta.telemetry.entitlements import ConfigRef
from flotta.telemetry.receivers import open_receiver
from flotta.telemetry.records import StreamRecord

STRICT = Outbound()


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("[::1]", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata services
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # an IPv4-mapped address reaches the IPv4 one
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
    ],
)
async def test_addresses_that_are_not_public_are_refused(host: str, kind: str) -> None:
    with pytest.raises(DestinationRefused) as refused:
        await STRICT.check(host, 443)
    message = str(refused.value)
    assert f"is a {kind} address" in message
    assert "FLOTTA_OUTBOUND__ALLOW" in message


async def test_a_name_is_refused_by_the_address_it_resolves_to() -> None:
    with pytest.raises(
        DestinationRefused, match=r"^localhost \((127\.0\.0\.1|::1)\) is a loopback"
    ):
        await STRICT.check("localhost", 8443)


@pytest.mark.parametrize("host", ["8.8.8.8", "2001:4860:4860::8888", "2002:808:808::1"])
async def test_public_addresses_pass(host: str) -> None:
    # Nothing connects: the check only resolves, and a literal address resolves to itself.
    await STRICT.check(host, 443)


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("2002:7f00:1::1", "is a 6to4 address"),  # wraps 127.0.0.1
        ("fec0::1", "is a site-local address"),
        # .invalid never resolves: a client library might still reach something by it.
        ("flotta-test.invalid", "does not resolve to an address here"),
        ("127%2e0%2e0%2e1", "is not a bare host name"),  # redis-py would percent-decode it
        ("127.0.0.1:6379/?", "is not a bare host name"),  # pasted into a wss:// URL, a port
        ("straße.example.com", "xn-- (IDNA) form"),  # IDNA 2003 and 2008 differ on it
        ("", "no host is named"),  # redis:///0?host=127.0.0.1
        # A URL parser reads what follows '@' as the host: 127.0.0.1.
        ("1.1.1.1%:x@127.0.0.1", "is not a bare host name or IP address"),
        ("2606:4700:4700::1111%:x@127.0.0.1", "is not a bare host name or IP address"),
        ("a:b@127.0.0.1", "is not a bare host name or IP address"),
    ],
)
async def test_hosts_that_cannot_be_checked_are_refused(host: str, why: str) -> None:
    with pytest.raises(DestinationRefused, match=re.escape(why)):
        await STRICT.check(host, 443)


async def test_an_allowed_network_is_reachable_and_only_it() -> None:
    outbound = Outbound([ipaddress.ip_network("10.20.0.0/16")])
    await outbound.check("10.20.3.4", 4222)
    await outbound.check("::ffff:10.20.3.4", 4222)
    with pytest.raises(DestinationRefused, match=r"^10\.21\.0\.1 is a private address"):
        await outbound.check("10.21.0.1", 4222)
    with pytest.raises(DestinationRefused, match="loopback"):
        await outbound.check("127.0.0.1", 4222)
    # The same network written IPv4-mapped allows the same addresses.
    mapped = Outbound([ipaddress.ip_network("::ffff:10.20.0.0/112")])
    await mapped.check("10.20.3.4", 4222)
    with pytest.raises(DestinationRefused, match="private"):
        await mapped.check("10.21.0.1", 4222)


async def test_an_allowed_link_local_address_keeps_its_interface() -> None:
    """getaddrinfo gives an IPv6 address's interface (its scope) apart from the address: it is
    kept, since a link-local address is reachable only through that interface."""
    scoped = address_of(("fe80::1", 443, 0, 2))
    assert str(scoped) == "fe80::1%2"
    assert address_of(("2001:db8::1", 443, 0, 0)) == ipaddress.IPv6Address("2001:db8::1")
    assert address_of(("10.0.0.1", 443)) == ipaddress.IPv4Address("10.0.0.1")

    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [scoped]

    allowed = Outbound([ipaddress.ip_network("fe80::/10")], resolve=resolve)
    assert await allowed.addresses("printer.lan", 443) == ("fe80::1%2",)
    with pytest.raises(DestinationRefused, match=r"printer\.lan \(fe80::1%2\) is a link-local"):
        await Outbound(resolve=resolve).check("printer.lan", 443)


def test_settings_allow_networks_and_a_demo_allows_everything_unless_told() -> None:
    secret = "s" * 24
    served = Outbound.from_settings(Settings(secret_key=secret))
    assert served.allowed == ()
    allowed = Settings(secret_key=secret, outbound={"allow": ["10.0.0.0/8", "fd00::/8"]})
    assert [str(n) for n in Outbound.from_settings(allowed).allowed] == ["10.0.0.0/8", "fd00::/8"]
    assert [str(n) for n in Settings(demo=True).outbound.allow] == ["0.0.0.0/0", "::/0"]
    assert Settings(demo=True, outbound={"allow": []}).outbound.allow == []
    with pytest.raises(ValueError, match=r"outbound\.allow"):
        Settings(secret_key=secret, outbound={"allow": ["10.0.0.0/33"]})


async def test_a_demo_outbound_check_passes_loopback() -> None:
    await Outbound.from_settings(Settings(demo=True)).check("127.0.0.1", 6379)


def test_each_sink_kind_names_the_hosts_it_connects_to() -> None:
    assert url_destination("https://hooks.example.com/x") == ("hooks.example.com", 443)
    assert sink_destinations("webhook", {"url": "http://h.example:8080/in"}) == [
        ("url", "h.example", 8080)
    ]
    assert sink_destinations("nats", {"url": "tls://u:p@nats.example"}) == [
        ("url", "nats.example", 4222)
    ]
    assert sink_destinations("redis", {"url": "redis://:pw@10.0.0.5/2"}) == [
        ("url", "10.0.0.5", 6379)
    ]
    assert sink_destinations("mqtt", {"host": "mq.example", "port": 8883}) == [
        ("host", "mq.example", 8883)
    ]
    assert sink_destinations("kafka", {"bootstrap_servers": "k1.example:9092,[::1]:9093"}) == [
        ("bootstrap_servers", "k1.example", 9092),
        ("bootstrap_servers", "::1", 9093),
    ]


class Recording:
    """A sink of our own that keeps what it was handed."""

    def __init__(self) -> None:
        self.batches: list[Sequence[StreamRecord]] = []
        self.closed = False

    async def deliver(self, batch: Sequence[StreamRecord]) -> None:
        self.batches.append(batch)

    async def close(self) -> None:
        self.closed = True


async def test_a_delivery_to_a_refused_host_is_a_nack_and_never_reaches_the_adapter() -> None:
    inner = Recording()
    guarded = GuardedSink(inner, [("127.0.0.1", 8080)], STRICT)
    with pytest.raises(SinkError, match=r"^127\.0\.0\.1 is a loopback address"):
        await guarded.deliver([])
    assert inner.batches == []
    allowed = GuardedSink(
        inner, [("127.0.0.1", 8080)], Outbound([ipaddress.ip_network("127.0.0.0/8")])
    )
    await allowed.deliver([])
    await allowed.close()
    assert inner.batches == [[]] and inner.closed


def test_open_sink_guards_deliveries_only_when_given_a_policy() -> None:
    settings = {"url": "http://127.0.0.1:9/hook"}
    guarded = open_sink("webhook", settings, "json", "whsec_" + "A" * 32, outbound=STRICT)
    assert isinstance(guarded, GuardedSink)
    assert not isinstance(open_sink("webhook", settings, "json", "whsec_" + "A" * 32), GuardedSink)


async def test_a_config_receiver_is_guarded_too() -> None:
    ref = ConfigRef(1, "app", "5YJ3E1EA7KF000001", "127.0.0.1", 4443, None)
    receiver = open_receiver(None, STRICT)(ref)
    with pytest.raises(SinkError, match=r"^127\.0\.0\.1 is a loopback address"):
        await receiver.deliver([])
    await receiver.close()
