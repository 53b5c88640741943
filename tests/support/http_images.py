"""Threaded loopback HTTP server with routes for good, slow, missing and redirecting images."""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType


class _Handler(BaseHTTPRequestHandler):
    root: Path
    slow_seconds = 3.0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path = self.path.split("?")[0]
        if path.startswith("/slow/"):
            time.sleep(self.slow_seconds)
            return self._send(200, b"too late", "image/jpeg")
        if path.startswith("/redirect-metadata"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return None
        file = self.root / path.lstrip("/")
        if file.is_file() and self.root in file.resolve().parents:
            return self._send(200, file.read_bytes(), "image/jpeg")
        return self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (the slow route): nothing to do
            self.wfile.write(body)


class ImageHttpServer:
    def __init__(self, root: Path) -> None:
        handler = type("Handler", (_Handler,), {"root": root.resolve()})
        self.root = root
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> ImageHttpServer:
        self.thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
