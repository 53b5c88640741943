"""``create_app(settings)``: the console's Starlette application, built on demand, never at import.

Server-rendered pages (Jinja2), one small stylesheet, inline SVG, no JavaScript needed. Every
error becomes a plain page with a clear message and the right status; a stack trace goes to the
log, never to the browser.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from streams.activation import open_registry
from streams.console import routes, search_routes
from streams.console.search import SearchService
from streams.console.security import Csrf, LoopbackOnly
from streams.console.views import ConsoleState, error_page
from streams.settings import Settings

HERE = Path(__file__).resolve().parent
log = structlog.get_logger("catalog.console")
_HTTP_WORDS = {
    404: ("Not found", "There is no such page."),
    405: ("Method not allowed", "This page does not accept that method; the console changes nothing on a GET."),
}


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await app.state.console.search.aclose()


def create_app(settings: Settings) -> Starlette:
    registry = open_registry(settings)
    templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html
    state = ConsoleState(settings, registry, templates, Csrf(), SearchService(settings, registry))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Request refused")
        detail = (
            exc.detail
            if exc.status_code not in (404, 405) or exc.detail not in ("Not Found", "Method Not Allowed")
            else ("There is no such page." if exc.status_code == 404 else "This page does not accept that method.")
        )
        return error_page(request, exc.status_code, title, str(detail))

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("console_error", path=request.url.path, error=type(exc).__name__, exc_info=exc)
        message = f"The console could not build this page ({type(exc).__name__}). The details are in its log."
        return error_page(request, 500, "Something went wrong", message)

    app = Starlette(
        routes=[
            Route("/", routes.models_page, name="models"),
            Route("/compare", routes.compare_page, name="compare"),
            Route("/select", routes.select_page, methods=["GET"], name="select"),
            Route("/select", routes.select_submit, methods=["POST"]),
            Route("/search", search_routes.search_page, methods=["GET"], name="search"),
            Route("/search", search_routes.search_upload, methods=["POST"]),
            Route("/sample/{split:str}/{index:int}.png", routes.sample_image),
            Route("/evaluation-image/{path:path}", routes.evaluation_image),
            Route("/report/{name:str}/{version:str}", routes.report_image),
            Route("/healthz", routes.healthz),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(LoopbackOnly, bound_host=settings.console_host)],
        exception_handlers={HTTPException: http_error, Exception: unexpected},
        lifespan=_lifespan,
    )
    app.state.console = state
    return app
