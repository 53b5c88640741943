"""Connections go only to the addresses the URL policy vetted, never to a second DNS answer.

httpx resolves a host name again when it connects. A DNS rebinding between the policy's check
and that second lookup (short TTL, an attacker's name server) would reach whatever the second
answer names: a private service, the cloud metadata endpoint. So the fetcher pins the vetted
addresses of ``(host, port)`` in a context variable around each request (task-local, so
concurrent fetches of one host cannot see each other's pins), and the transport's network
backend connects only to those. A host without pins is refused, not resolved: fail closed.

The host name still drives everything above TCP: the Host header, TLS SNI and certificate
verification. Pooled keep-alive connections are keyed by host name and were pinned when they
were opened, so a reused connection also goes to an address that was vetted.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

import httpcore
import httpx

from processors.intake.url_policy import IPAddress

_NO_PINS: Mapping[tuple[str, int], tuple[str, ...]] = MappingProxyType({})
_PINS: ContextVar[Mapping[tuple[str, int], tuple[str, ...]]] = ContextVar("catalog_intake_pins", default=_NO_PINS)


@contextmanager
def pinned_addresses(host: str, port: int, addresses: Iterable[IPAddress]) -> Iterator[None]:
    """Within the block, a connection to ``host:port`` may only go to ``addresses`` (in order)."""
    pins = dict(_PINS.get())
    pins[(host.lower(), port)] = tuple(dict.fromkeys(str(a) for a in addresses))
    token = _PINS.set(MappingProxyType(pins))
    try:
        yield
    finally:
        _PINS.reset(token)


class PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Connects to the pinned addresses of the requested host; never resolves a name itself."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = _PINS.get().get((host.lower(), port))
        if not addresses:
            raise httpcore.ConnectError(f"{host}:{port} was not vetted by the URL policy; refusing to connect")
        last: Exception | None = None
        for address in addresses:  # like getaddrinfo's order: next vetted address when one is down
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are never a vetted destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own HTTP/1.1 transport, with the pinning network backend under its connection pool.

    httpx does not take a network backend as an argument, so the pool it built is replaced by an
    identical one that has it; the constructor fails loudly if httpx stops keeping its pool in
    ``_pool``, rather than silently fetching unpinned.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),
        socket_options: Sequence[httpcore.SOCKET_OPTION] | None = None,
    ) -> None:
        super().__init__(verify=verify, trust_env=False, limits=limits, socket_options=socket_options)
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("httpx.AsyncHTTPTransport no longer keeps its pool in _pool; pinning cannot be set up")
        ssl_context = (
            verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify, trust_env=False)
        )
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            socket_options=socket_options,
            network_backend=PinnedNetworkBackend(),
        )
