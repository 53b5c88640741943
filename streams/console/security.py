"""Who may talk to the console, and proof that a POST came from its own form.

Loopback: a console bound to 127.0.0.1 (or ::1 / localhost) serves loopback clients only, and only
under a loopback ``Host`` name, so a web page elsewhere cannot reach it through DNS rebinding.

CSRF: a random token lives in an HttpOnly, SameSite=Strict cookie; every form carries an HMAC of
it under a key that lives as long as the console process. A POST whose form token does not match
its cookie's is refused with 403 before anything happens.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Receive, Scope, Send

CSRF_COOKIE = "catalog_console_csrf"
CSRF_FIELD = "csrf_token"
_LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host of a ``Host`` header without its port (``[::1]:8090`` -> ``::1``)."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class LoopbackOnly:
    """ASGI middleware: 403 for a non-loopback client or Host name while the console listens on loopback."""

    def __init__(self, app: ASGIApp, bound_host: str) -> None:
        self.app = app
        self.enforce = is_loopback(bound_host)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.enforce and scope["type"] == "http":
            request = Request(scope)
            client = request.client.host if request.client else None
            host = _host_name(request.headers.get("host", ""))
            if not is_loopback(client) or not is_loopback(host):
                response = HTMLResponse(
                    "<!doctype html><title>Forbidden</title><h1>403 Forbidden</h1>"
                    "<p>This console listens on the loopback interface and answers local clients only.</p>",
                    status_code=403,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Csrf:
    """Issues and checks form tokens bound to the browser's cookie."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_urlsafe(32)

    def form_token(self, cookie: str) -> str:
        return hmac.new(self._key, cookie.encode("utf-8"), hashlib.sha256).hexdigest()

    def valid(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        return hmac.compare_digest(self.form_token(cookie), token)
