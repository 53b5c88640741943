"""Threaded loopback HTTP(S) server with routes for good, slow, missing and redirecting images.

It can bind any loopback address and a fixed port (two servers on 127.0.0.1 and 127.0.0.2 with
one port play the two answers of a DNS rebinding), serve TLS, and records every request's path
and Host header.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, urlsplit


class _Handler(BaseHTTPRequestHandler):
    root: Path
    requests: list[tuple[str, str]]
    slow_seconds = 3.0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
        self.requests.append((path, self.headers.get("Host", "")))
        if path == "/redirect" and "to" in query:
            self.send_response(302)
            self.send_header("Location", query["to"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
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
    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, Host header) of every GET
        handler = type("Handler", (_Handler,), {"root": root.resolve(), "requests": self.requests})
        self.root = root
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.httpd.server_address[0]}:{self.port}"

    def __enter__(self) -> ImageHttpServer:
        self.thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
