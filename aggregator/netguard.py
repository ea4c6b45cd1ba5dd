"""The SSRF guard: refuse hosts that are, or resolve to, non-public addresses, checked as each
connection opens (so on every redirect hop), and connect to the very address that was vetted so a
second DNS answer cannot swap it."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable

import httpcore
import httpx

from aggregator import tls
from aggregator.errors import AggregatorError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Policy = Callable[[IPAddress], str | None]
"""What makes an address off limits ("a loopback address"), or None when it may be used."""

CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class Refused(AggregatorError):
    """The guard would not connect; the message names the host, the address and why."""


def address_kind(address: IPAddress) -> str | None:
    """The default policy: only globally routable unicast addresses may be used."""
    for embedded in _embedded_ipv4(address):
        kind = address_kind(embedded)
        if kind is not None:
            return kind
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return None
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address in CGNAT, "a carrier-grade NAT address"),
        (address.is_reserved, "a reserved address"),
        (address.is_private, "a private address"),
        (not address.is_global, "a non-public address"),
    )
    return next((kind for refused, kind in checks if refused), None)


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 one reaches: mapped, 6to4, Teredo, NAT64."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo is not None:
        found.append(address.teredo[1])
    if address in NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


async def vetted_addresses(host: str, port: int, policy: Policy) -> list[str]:
    """Every address `host` resolves to, once all pass `policy`; raises Refused otherwise."""
    bare = host.strip("[]")
    try:
        literal: IPAddress | None = ipaddress.ip_address(bare)
    except ValueError:
        literal = None
    if literal is not None:
        kind = policy(literal)
        if kind is not None:
            raise Refused(f"refused: {bare} is {kind}")
        return [bare]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Refused(f"cannot resolve {host} ({_strerror(exc)})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        kind = policy(ipaddress.ip_address(address.split("%")[0]))
        if kind is not None:
            raise Refused(f"refused: {host} resolves to {address}, {kind}")
    return addresses


def _strerror(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, vetting every TCP connection before it is opened."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await vetted_addresses(host, port, self.policy):
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused(f"refused: unix socket {path}")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def make_transport(limits: httpx.Limits, policy: Policy | None) -> httpx.AsyncHTTPTransport:
    """httpx's transport (no proxies from the environment), on the process's TLS context;
    guarded unless `policy` is None."""
    context = tls.context()
    transport = httpx.AsyncHTTPTransport(verify=context, limits=limits, trust_env=False)
    if policy is not None:
        # httpx has no parameter for a network backend: rebuild its pool with one.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )
    return transport
