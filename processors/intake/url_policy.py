"""SSRF and path-traversal guard: decides whether a seller-supplied URL may be read at all.

Every resolved address must be public (unless allow-listed) because one private answer is
enough for an attacker to reach internal services or cloud metadata endpoints. The vetted
addresses travel with the URL (:class:`VettedUrl`) so the fetcher connects to exactly those
(see ``pinning``): a second DNS lookup could answer differently.

Every malformed URL is refused here as ``url_invalid``: the host must be an IP literal without
a zone id or a DNS name of valid labels whose punycode decodes, so nothing downstream (httpx,
idna, the resolver) meets a URL it would crash on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx
import idna

from processors.errors import InputRejected
from processors.intake import codes as c
from processors.intake.config import IntakeConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``(host, port) -> address strings``; raise ``OSError`` when the name does not resolve."""

_FETCHABLE_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# one DNS label after IDNA encoding; "_" occurs in real names (service records, some CDNs)
_DNS_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo) in a worker thread, so the event loop stays free."""
    infos = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class VettedUrl:
    """An http(s) URL that passed the policy, with the addresses that were checked for its host.

    ``host`` is the IDNA-encoded host exactly as the HTTP transport will name it and ``port`` the
    effective port: together they are the key under which the addresses are pinned.
    """

    url: httpx.URL
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def is_forbidden_address(ip: IPAddress) -> bool:
    """True for anything that is not a plain public unicast address, including embedded IPv4."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        if any(e is not None and is_forbidden_address(e) for e in embedded):
            return True
    return (
        not ip.is_global
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


class UrlPolicy:
    """Validates URLs against an :class:`IntakeConfig`; stateless apart from the parsed allow-list."""

    def __init__(self, config: IntakeConfig, resolver: Resolver | None = None) -> None:
        self._config = config
        self._resolver = resolver or system_resolver
        self._allowed_hosts: set[str] = set()
        self._allowed_nets: list[IPNetwork] = []
        for entry in config.private_host_allowlist:
            try:
                self._allowed_nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self._allowed_hosts.add(entry.lower().rstrip("."))

    async def check(self, url: str) -> VettedUrl | Path:
        """Return the vetted URL or the real file path, or raise ``InputRejected``."""
        if not isinstance(url, str) or not url or len(url) > self._config.max_url_length:
            c.reject(c.URL_INVALID, "URL is empty, not a string or too long")
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
            c.reject(c.URL_INVALID, "URL contains whitespace or control characters")
        if not url.isascii() and not _encodable(url):
            c.reject(c.URL_INVALID, "URL contains unpaired surrogates (not Unicode text)")
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError as exc:
            c.reject(c.URL_INVALID, f"URL cannot be parsed: {exc}")
        if not scheme:
            c.reject(c.URL_INVALID, "URL has no scheme")
        if scheme == "file":
            return self.check_file(url)
        if scheme not in self._config.allowed_url_schemes or scheme not in _FETCHABLE_SCHEMES:
            c.reject(c.URL_SCHEME_FORBIDDEN, f"URL scheme {scheme!r} is not allowed")
        return await self.check_http(url)

    async def check_redirect(self, target: httpx.URL) -> VettedUrl:
        """Validate a redirect hop: only http(s), never file://, same host rules as the first hop."""
        if target.scheme not in self._config.allowed_url_schemes or target.scheme not in _FETCHABLE_SCHEMES:
            c.reject(c.REDIRECT_FORBIDDEN, f"redirect to scheme {target.scheme!r} refused")
        try:
            return await self.check_http(str(target))
        except InputRejected as exc:
            c.reject(c.REDIRECT_FORBIDDEN, f"redirect target refused ({exc.error_code}): {exc.message}")

    async def check_http(self, url: str) -> VettedUrl:
        """Parse with httpx itself (no parser differential), vet credentials, port and host, resolve."""
        parsed, host, port = _parse_http(url)
        if parsed.userinfo:
            c.reject(c.URL_CREDENTIALS_FORBIDDEN, "URLs with embedded credentials are refused")
        name = host[:-1] if host.endswith(".") else host
        addresses = await self._resolve(name, port)
        for ip in addresses:
            if is_forbidden_address(ip) and not self._is_allowlisted(name, ip):
                c.reject(c.URL_HOST_FORBIDDEN, f"host {name!r} resolves to non-public address {ip}")
        return VettedUrl(parsed, host, port, addresses)

    def check_file(self, url: str) -> Path:
        """Map a file:// URL to a real path that must stay inside ``file_root`` after symlinks."""
        root = self._config.file_root
        if not self._config.allow_file_urls or root is None:
            c.reject(c.FILE_URL_DISABLED, "file:// URLs are disabled")
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            c.reject(c.URL_INVALID, "file:// URL must be local and carry no query or fragment")
        try:
            real = Path(url2pathname(parts.path)).resolve()  # url2pathname percent-decodes once
            real_root = root.resolve(strict=True)
        except (OSError, ValueError, RuntimeError) as exc:
            c.reject(c.URL_INVALID, f"file path cannot be resolved: {exc}")
        if not real.is_relative_to(real_root):
            c.reject(c.FILE_OUTSIDE_ROOT, "file path lies outside the permitted root")
        if not real.is_file():
            c.reject(c.FILE_NOT_FOUND, "file does not exist or is not a regular file")
        return real

    async def _resolve(self, host: str, port: int) -> tuple[IPAddress, ...]:
        """Resolve with the injected resolver, bounded by the fetch timeout; IP literals stay as they are."""
        try:
            return (ipaddress.ip_address(host),)
        except ValueError:
            pass
        try:
            answers = await asyncio.wait_for(self._resolver(host, port), timeout=self._config.fetch_timeout_s)
        except (OSError, UnicodeError, TimeoutError) as exc:
            c.reject(c.URL_HOST_UNRESOLVABLE, f"host {host!r} cannot be resolved: {exc}")
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                addresses.append(ipaddress.ip_address(str(answer).split("%", 1)[0]))
            except ValueError:
                c.reject(c.URL_HOST_FORBIDDEN, f"host {host!r} resolves to an unparseable address")
        if not addresses:
            c.reject(c.URL_HOST_UNRESOLVABLE, f"host {host!r} has no addresses")
        return tuple(dict.fromkeys(addresses))

    def _is_allowlisted(self, host: str, ip: IPAddress) -> bool:
        return host in self._allowed_hosts or any(ip in net for net in self._allowed_nets)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse_http(url: str) -> tuple[httpx.URL, str, int]:
    """httpx's parse plus the checks it leaves to connect time: ``(url, IDNA host, effective port)``.

    Every way a URL can be malformed ends here as ``url_invalid``: httpx accepts some hosts it
    later crashes on (a non-ASCII IPv6 zone id, punycode that does not decode) and ports written
    in non-ASCII digits.
    """
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
        split_port = urlsplit(url).port  # ASCII digits in 0-65535 only, unlike httpx's int()
    except (httpx.InvalidURL, ValueError, TypeError) as exc:  # UnicodeError and IDNAError are ValueErrors
        c.reject(c.URL_INVALID, f"URL cannot be parsed: {exc}")
    if parsed.scheme not in _DEFAULT_PORTS:
        c.reject(c.URL_SCHEME_FORBIDDEN, f"URL scheme {parsed.scheme!r} is not fetchable")
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS[parsed.scheme]
    if (split_port is not None and split_port != port) or not 0 < port < 65536:
        c.reject(c.URL_INVALID, f"URL port {port} is out of range")
    _check_host(host)
    return parsed, host, port


def _check_host(host: str) -> None:
    """An IP literal without zone id, or a DNS name of 1-63 character labels that decodes as IDNA."""
    if not host:
        c.reject(c.URL_INVALID, "URL has no host")
    if ":" in host or host.startswith("["):
        try:
            ip = ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            c.reject(c.URL_INVALID, f"host {host!r} is not a valid IPv6 address")
        if ip.scope_id is not None:
            c.reject(c.URL_INVALID, "IPv6 zone ids name a local interface and are never fetched")
        return
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253:
        c.reject(c.URL_INVALID, f"host name is empty or longer than 253 characters: {host[:80]!r}")
    for label in name.split("."):
        if not _DNS_LABEL.fullmatch(label):
            c.reject(c.URL_INVALID, f"host label {label[:80]!r} is not a valid DNS label")
    if any(label.startswith("xn--") for label in name.split(".")):
        try:
            idna.decode(name)
        except (idna.IDNAError, UnicodeError, ValueError) as exc:
            c.reject(c.URL_INVALID, f"host {host!r} is not valid IDNA (punycode): {exc}")
