"""SSRF and path-traversal guard: decides whether a seller-supplied URL may be read at all.

Every resolved address must be public (unless allow-listed) because one private answer is
enough for an attacker to reach internal services or cloud metadata endpoints.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx

from processors.errors import InputRejected
from processors.intake import codes as c
from processors.intake.config import IntakeConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_FETCHABLE_SCHEMES = frozenset({"http", "https"})


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

    def __init__(self, config: IntakeConfig) -> None:
        self._config = config
        self._allowed_hosts: set[str] = set()
        self._allowed_nets: list[IPNetwork] = []
        for entry in config.private_host_allowlist:
            try:
                self._allowed_nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self._allowed_hosts.add(entry.lower().rstrip("."))

    async def check(self, url: str) -> httpx.URL | Path:
        """Return the fetchable URL or the real file path, or raise ``InputRejected``."""
        if not isinstance(url, str) or not url or len(url) > self._config.max_url_length:
            c.reject(c.URL_INVALID, "URL is empty, not a string or too long")
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
            c.reject(c.URL_INVALID, "URL contains whitespace or control characters")
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

    async def check_redirect(self, target: httpx.URL) -> httpx.URL:
        """Validate a redirect hop: only http(s), never file://, same host rules as the first hop."""
        if target.scheme not in self._config.allowed_url_schemes or target.scheme not in _FETCHABLE_SCHEMES:
            c.reject(c.REDIRECT_FORBIDDEN, f"redirect to scheme {target.scheme!r} refused")
        try:
            return await self.check_http(str(target))
        except InputRejected as exc:
            c.reject(c.REDIRECT_FORBIDDEN, f"redirect target refused ({exc.error_code}): {exc.message}")

    async def check_http(self, url: str) -> httpx.URL:
        """Parse with httpx itself (no parser differential) and vet credentials, port and host."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            c.reject(c.URL_INVALID, f"URL cannot be parsed: {exc}")
        if parsed.userinfo:
            c.reject(c.URL_CREDENTIALS_FORBIDDEN, "URLs with embedded credentials are refused")
        # raw_host is the exact (IDNA-encoded) name httpx will connect to, so resolve that.
        host = parsed.raw_host.decode("ascii", "replace").rstrip(".").lower()
        if not host or "%" in host or "\ufffd" in host:
            c.reject(c.URL_INVALID, "URL has no valid host")
        port = parsed.port if parsed.port is not None else (443 if parsed.scheme == "https" else 80)
        if not 0 < port < 65536:
            c.reject(c.URL_INVALID, f"URL port {port} is out of range")
        for ip in await self._resolve(host, port):
            if is_forbidden_address(ip) and not self._is_allowlisted(host, ip):
                c.reject(c.URL_HOST_FORBIDDEN, f"host {host!r} resolves to non-public address {ip}")
        return parsed

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

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        """Resolve off the event loop, bounded by the fetch timeout."""
        try:
            infos = await asyncio.wait_for(
                asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM),
                timeout=self._config.fetch_timeout_s,
            )
        except (OSError, UnicodeError, TimeoutError) as exc:
            c.reject(c.URL_HOST_UNRESOLVABLE, f"host {host!r} cannot be resolved: {exc}")
        addresses = []
        for info in infos:
            try:
                addresses.append(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
            except ValueError:
                c.reject(c.URL_HOST_FORBIDDEN, f"host {host!r} resolves to an unparseable address")
        if not addresses:
            c.reject(c.URL_HOST_UNRESOLVABLE, f"host {host!r} has no addresses")
        return addresses

    def _is_allowlisted(self, host: str, ip: IPAddress) -> bool:
        return host in self._allowed_hosts or any(ip in net for net in self._allowed_nets)
