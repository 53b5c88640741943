"""Liveness and readiness beside the Prometheus metrics, on one loopback port.

Why not prometheus_client's ``start_http_server``: it serves only metrics. A small WSGI
app answers ``/healthz`` (the process and its event loop are alive), ``/readyz`` (models
loaded, Milvus answering, consumer assignment received) and hands every other path to
prometheus_client's own WSGI app.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

LOOP_STALL_S = 30.0  # an event loop that has not ticked this long is not alive


@dataclass
class HealthState:
    """Written by the worker's event loop, read by the HTTP thread (plain attribute writes)."""

    models_loaded: bool = False
    milvus_ok: bool = False
    milvus_error: str | None = None
    assigned: bool = False
    partitions: int = 0
    startup_error: str | None = None
    _loop_tick: float | None = field(default=None, repr=False)

    def tick(self) -> None:
        self._loop_tick = time.monotonic()

    def live(self) -> bool:
        """Alive until the event loop stalls (before it starts, the process itself is the proof)."""
        return self.startup_error is None and (
            self._loop_tick is None or time.monotonic() - self._loop_tick < LOOP_STALL_S
        )

    def ready(self) -> bool:
        return self.live() and self.models_loaded and self.milvus_ok and self.assigned

    def as_dict(self) -> dict[str, Any]:
        return {
            "live": self.live(),
            "ready": self.ready(),
            "models_loaded": self.models_loaded,
            "milvus_ok": self.milvus_ok,
            "milvus_error": self.milvus_error,
            "assigned": self.assigned,
            "partitions": self.partitions,
            "startup_error": self.startup_error,
        }


def health_wsgi_app(registry: CollectorRegistry, health: HealthState) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            ok = health.live() if path == "/healthz" else health.ready()
            body = json.dumps(health.as_dict()).encode()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return metrics(environ, start_response)

    return app


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """Probes every few seconds must not fill the worker's log."""


def serve(host: str, port: int, registry: CollectorRegistry, health: HealthState) -> WSGIServer:
    """Start the server in a daemon thread; returns it (``shutdown()`` stops it)."""
    server = make_server(
        host, port, health_wsgi_app(registry, health), _ThreadingWSGIServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
