"""Where the server may connect on a developer's behalf.

Developers name hosts the server then connects to: a telemetry config's `hostname`, a sink's
URL or broker, the domain a partner key is fetched from. Left unchecked, any developer could
point those at the server's own network (its database, Redis, a cloud metadata service on
169.254.169.254) and read what comes back in the delivery log or an error message. So every
such host must resolve only to public addresses, unless the operator allows a network
(`FLOTTA_OUTBOUND__ALLOW`); `flotta demo`, a sandbox on one machine, allows every address.

The check resolves the host itself, at config time (a 400 that names the address) and again
before each delivery or fetch (DNS can change after a config was accepted). HTTP (webhooks, key
downloads), receivers and a config's reachability check then connect to an address that check
returned, not to the name: a name whose records flip between a public and a private address
from one lookup to the next (DNS rebinding) cannot slip a private one in between. TLS still
verifies the certificate against the name. Broker sinks (NATS, MQTT, Redis, Kafka) connect by
name through their own client libraries, so for them that instant remains (docs/telemetry.md
says so); a Kafka producer checks the brokers a cluster advertises too (sink_kafka).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import httpcore
import httpx

from flotta.caching import ExpiringCache

if TYPE_CHECKING:
    from flotta.settings import Settings

T = TypeVar("T")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# How long a host's verdict is remembered: deliveries go in batches, many a second.
VERDICT_TTL_S = 5.0
RESOLVE_TIMEOUT_S = 5.0
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
# A host name (letters, digits, dots, hyphens; underscores occur in real names), an IPv4
# address, or an IPv6 one, bracketed or not, without a scope: nothing a URL parser could read
# as userinfo, a port or a path.
_HOST = re.compile(r"[A-Za-z0-9._-]+|\[?[0-9A-Fa-f:.]+\]?")
# A URL's port when it names none, by scheme.
DEFAULT_PORTS = {"http": 80, "https": 443, "nats": 4222, "tls": 4222, "redis": 6379, "rediss": 6379}


def url_destination(url: str) -> tuple[str, int]:
    """The host and port a URL connects to."""
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 0)


class DestinationRefused(Exception):
    """A host the server will not connect to; the message says why and what would allow it."""


def kind_of(address: IPAddress) -> str | None:
    """What makes `address` not public ("loopback", "private", ...), or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.sixtofour is not None:
        # 2002::/16 wraps an IPv4 address, which a 6to4 relay would reach.
        return "6to4" if kind_of(address.sixtofour) is not None else None
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    for kind, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("site-local", site_local),
    ):
        if flag:
            return kind
    return None if address.is_global else "non-public"


Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
# (why the host is refused, or None; the addresses it was checked at)
Verdict = tuple[str | None, tuple[str, ...]]


class Outbound:
    """The networks a developer's destinations may resolve to besides public addresses.

    `resolve` is the DNS lookup (tests give their own, to play a name's answers)."""

    def __init__(self, allowed: Iterable[IPNetwork] = (), resolve: Resolver | None = None) -> None:
        self.allowed = tuple(_plain(network) for network in allowed)
        self._everything = all(
            any(network.prefixlen == 0 for network in self.allowed if network.version == version)
            for version in (4, 6)
        )
        self._resolve = resolve or _resolve
        self._verdicts: ExpiringCache[tuple[str, int], Verdict] = ExpiringCache(VERDICT_TTL_S, 4096)

    @classmethod
    def from_settings(cls, settings: Settings) -> Outbound:
        return cls(settings.outbound.allow)

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why `host`, resolved to `address`, is refused; None when it may be reached."""
        # ::ffff:10.0.0.1 reaches 10.0.0.1.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        kind = kind_of(address)
        if kind is None or any(address in network for network in self.allowed):
            return None
        named = str(address) if host.strip("[]") == str(address) else f"{host} ({address})"
        return (
            f"{named} is a {kind} address: the server connects only to public addresses on a "
            "developer's behalf (its operator can allow a network with FLOTTA_OUTBOUND__ALLOW)"
        )

    async def check(self, host: str, port: int) -> None:
        """DestinationRefused when `host` resolves to an address this server must not reach,
        or cannot be checked: a name that does not resolve here, or is not plain ASCII (a
        client library may read such a name otherwise, e.g. percent-decoded or IDNA-encoded
        another way, and reach a host that was never checked)."""
        await self.addresses(host, port)

    async def addresses(self, host: str, port: int) -> tuple[str, ...]:
        """What to connect to for `host`: the addresses `check` accepted it at, or the name
        itself when every address is allowed (the demo). DestinationRefused as `check`."""
        if self._everything:
            return (host,)
        now = asyncio.get_running_loop().time()
        refused, addresses = await self._verdicts.get(
            (host, port), now, lambda key: self._verdict(*key)
        )
        if refused is not None:
            raise DestinationRefused(refused)
        return addresses

    async def check_all(self, destinations: Iterable[tuple[str, int]]) -> None:
        for host, port in destinations:
            await self.check(host, port)

    async def _verdict(self, host: str, port: int) -> Verdict:
        if not host:
            return "no host is named", ()
        if not host.isascii() or not host.isprintable():
            return (
                f"{host!r} is not a plain ASCII host name: write an international name in its "
                "xn-- (IDNA) form"
            ), ()
        if not _HOST.fullmatch(host):  # '1.1.1.1%:x@10.0.0.1' is 10.0.0.1 to a URL parser
            return f"{host!r} is not a bare host name or IP address", ()
        addresses = await self._resolve(host, port)
        if not addresses:
            return (
                f"{host!r} does not resolve to an address here: the server connects only to "
                "hosts it can check are public"
            ), ()
        for address in addresses:
            if (refused := self.refusal(host, address)) is not None:
                return refused, ()
        return None, tuple(dict.fromkeys(str(address) for address in addresses))


class PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's connections, made to the addresses `Outbound.addresses` checked rather than
    to the name the URL gives (TLS is still verified against that name)."""

    def __init__(self, outbound: Outbound) -> None:
        self._outbound = outbound
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._outbound.addresses(host, port)
        except DestinationRefused as exc:
            raise httpcore.ConnectError(str(exc)) from None

        async def connect(address: str, share: float | None) -> httpcore.AsyncNetworkStream:
            return await self._inner.connect_tcp(
                address, port, share, local_address, socket_options
            )

        return await first_connected(
            addresses, connect, timeout, (httpcore.ConnectError, httpcore.ConnectTimeout)
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("a developer's destination is never a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def first_connected(
    addresses: Sequence[str],
    connect: Callable[[str, float | None], Awaitable[T]],
    total_s: float | None,
    failures: tuple[type[Exception], ...] = (OSError, TimeoutError),
) -> T:
    """`connect(address, its timeout)` to each address in turn, in the resolver's order as a
    client library would, until one connects; each gets an equal share of `total_s`, so a
    silent first address cannot use up the whole of it. The last failure if none connects."""
    share = None if total_s is None else total_s / len(addresses)
    failure: Exception | None = None
    for address in addresses:
        try:
            return await connect(address, share)
        except failures as exc:
            failure = exc
    if failure is None:
        raise ValueError("no address to connect to")
    raise failure


def pinned_transport(outbound: Outbound) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections go only to addresses `outbound` checked. Given a
    transport, an httpx client uses no proxy from the environment, which would resolve the
    name again itself; the environment's CA bundle (SSL_CERT_FILE) still counts."""
    transport = httpx.AsyncHTTPTransport()
    pool = transport._pool  # httpx builds the pool; httpcore takes a backend only there
    if not isinstance(pool, httpcore.AsyncConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("this httpx/httpcore cannot pin connections: update flotta.outbound")
    pool._network_backend = PinnedNetworkBackend(outbound)
    return transport


def _plain(network: IPNetwork) -> IPNetwork:
    """An IPv4-mapped network (::ffff:10.0.0.0/104) as the IPv4 one it stands for: addresses
    are compared in that form."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= _MAPPED.prefixlen:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - _MAPPED.prefixlen))
    return network


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (a literal address is itself); [] when it does not."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError, UnicodeError):
        return []
    return [address_of(info[4]) for info in found]


def address_of(
    sockaddr: tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes],
) -> IPAddress:
    """The address of a getaddrinfo result, an IPv6 one with its scope (a link-local address
    is reachable only through its interface, so connecting to it needs the scope too)."""
    host = str(sockaddr[0]).split("%", 1)[0]
    if len(sockaddr) == 4 and sockaddr[3]:
        return ipaddress.ip_address(f"{host}%{sockaddr[3]}")
    return ipaddress.ip_address(host)
