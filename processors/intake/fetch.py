"""Bounded HTTP download: manual redirects re-vetted per hop, byte cap while streaming, retries.

Fetch problems end as ``InputRejected`` once the attempts are spent: a seller URL that keeps
failing is the seller's problem, and the stream layer reserves long-lived retries for our own
infrastructure.
"""

from __future__ import annotations

import asyncio

import httpx

from processors.intake import codes as c
from processors.intake.config import IntakeConfig
from processors.intake.pinning import pinned_addresses
from processors.intake.url_policy import UrlPolicy, VettedUrl

_RETRYABLE_STATUS = frozenset({408, 425, 429})
_HEADERS = {"Accept": "image/jpeg, image/png, image/webp;q=0.9, */*;q=0.1", "Accept-Encoding": "identity"}


class _AttemptFailed(Exception):
    """A failure worth another attempt (timeouts, connection errors, 5xx)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Fetcher:
    """Downloads one already-vetted URL with the limits of an :class:`IntakeConfig`.

    Each hop connects only to the addresses its vetting resolved (``pinned_addresses``); that
    holds with the client :class:`ImageIntake` builds (a ``PinnedTransport``), and is the caller's
    duty with a borrowed client.
    """

    def __init__(self, config: IntakeConfig, client: httpx.AsyncClient, policy: UrlPolicy) -> None:
        self._config = config
        self._client = client
        self._policy = policy

    async def fetch(self, url: VettedUrl) -> bytes:
        """Return the body, retrying transient failures, else raise ``InputRejected``."""
        cfg = self._config
        last: _AttemptFailed | None = None
        for attempt in range(cfg.fetch_attempts):
            if attempt:
                await asyncio.sleep(cfg.retry_backoff_s * 2 ** (attempt - 1))
            try:
                async with asyncio.timeout(cfg.fetch_timeout_s):
                    return await self._attempt(url)
            except TimeoutError:
                last = _AttemptFailed(c.FETCH_TIMEOUT, f"no complete response within {cfg.fetch_timeout_s}s")
            except _AttemptFailed as exc:
                last = exc
        assert last is not None
        c.reject(last.code, f"{last.message} (after {cfg.fetch_attempts} attempts)")

    async def _attempt(self, url: VettedUrl) -> bytes:
        """One attempt: follow up to ``max_redirects`` hops, each vetted and pinned before it is requested."""
        current, seen = url, {str(url.url)}
        for hop in range(self._config.max_redirects + 1):
            result = await self._request(current)
            if isinstance(result, bytes):
                return result
            if hop == self._config.max_redirects:
                break
            try:
                target = current.url.join(result)
            except (httpx.InvalidURL, ValueError) as exc:
                c.reject(c.REDIRECT_FORBIDDEN, f"redirect Location is not a valid URL: {exc}")
            if str(target) in seen:
                c.reject(c.REDIRECT_FORBIDDEN, f"redirect loop detected at {target}")
            seen.add(str(target))
            current = await self._policy.check_redirect(target)
        c.reject(c.REDIRECT_FORBIDDEN, f"more than {self._config.max_redirects} redirects")

    async def _request(self, target: VettedUrl) -> bytes | str:
        """GET once, connecting only to the vetted addresses; returns the body, or a redirect's Location."""
        try:
            with pinned_addresses(target.host, target.port, target.addresses):
                async with self._client.stream(
                    "GET", target.url, headers=_HEADERS, follow_redirects=False, timeout=self._config.fetch_timeout_s
                ) as resp:
                    if resp.has_redirect_location:
                        return resp.headers["location"]
                    self._check_status(resp)
                    return await self._read_capped(resp)
        except httpx.TimeoutException as exc:
            raise _AttemptFailed(c.FETCH_TIMEOUT, f"timed out: {type(exc).__name__}") from exc
        except httpx.RequestError as exc:
            raise _AttemptFailed(c.FETCH_FAILED, f"request failed: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _check_status(resp: httpx.Response) -> None:
        status = resp.status_code
        if 200 <= status < 300:
            return
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise _AttemptFailed(c.FETCH_HTTP_STATUS, f"server answered HTTP {status}")
        c.reject(c.FETCH_HTTP_STATUS, f"server answered HTTP {status}")

    async def _read_capped(self, resp: httpx.Response) -> bytes:
        """Refuse early on a large Content-Length, and never buffer more than ``max_bytes`` + 1 chunk."""
        limit = self._config.max_bytes
        declared = resp.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            c.reject(c.FETCH_TOO_LARGE, f"Content-Length {declared} exceeds {limit} bytes")
        body = bytearray()
        async for chunk in resp.aiter_bytes():
            body += chunk
            if len(body) > limit:
                c.reject(c.FETCH_TOO_LARGE, f"body exceeds {limit} bytes")
        return bytes(body)
