"""What every page shares: the console's state, rendering with the CSRF cookie, and the plain error page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from model_store.registry import ModelRegistry
from streams.console.search import SearchService
from streams.console.security import CSRF_COOKIE, CSRF_FIELD, Csrf
from streams.settings import Settings


@dataclass
class ConsoleState:
    settings: Settings
    registry: ModelRegistry
    templates: Jinja2Templates
    csrf: Csrf
    search: SearchService


def state_of(request: Request) -> ConsoleState:
    return request.app.state.console


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    """A page with a form token for this browser's CSRF cookie (set here when the browser has none)."""
    state = state_of(request)
    cookie = request.cookies.get(CSRF_COOKIE)
    fresh = cookie is None
    if cookie is None:
        cookie = state.csrf.new_cookie()
    context = {
        "settings": state.settings,
        "csrf_field": CSRF_FIELD,
        "csrf_token": state.csrf.form_token(cookie),
        "nav": template.split(".")[0],
        **context,
    }
    response = state.templates.TemplateResponse(request, template, context, status_code=status)
    if fresh:
        response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="strict", path="/")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"
    )
    return response


def error_page(request: Request, status: int, title: str, message: str, hint: str | None = None) -> Response:
    """A plain page: what went wrong, in words; never a stack trace. Falls back to bare HTML if templates fail."""
    try:
        return render(request, "error.html", {"status": status, "title": title, "message": message, "hint": hint},
                      status)  # fmt: skip
    except Exception:  # the error page itself must not fail
        from html import escape

        return HTMLResponse(f"<!doctype html><title>{status}</title><h1>{escape(title)}</h1><p>{escape(message)}</p>",
                            status_code=status)  # fmt: skip
