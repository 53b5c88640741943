"""Bad input against the live console (a real uvicorn server on 127.0.0.1, the real broker): every refusal is a
plain page with the right status, and no failed request publishes anything.

The console runs on a registry of its own: the shipped student, a copy whose weights lost one byte
(checksum mismatch), and the router (not an embedding model). "Nothing published" is checked on the
models topic itself, record by record.
"""

from __future__ import annotations

import asyncio
import io
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from model_store.registry import WEIGHTS_FILE
from streams.events import ACTIVATION_KEY, ModelActivated
from tests.support.console import Record, copy_version, topic_records
from tests.support.console_fixture import console_on_own_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
SERVED = "student@17"
MAX_UPLOAD = 40_000


@dataclass(frozen=True)
class Stack:
    url: str
    bootstrap: str
    topic: str
    log: Path

    def records(self) -> list[Record]:
        return asyncio.run(topic_records(self.bootstrap, self.topic))


@pytest.fixture(scope="module")
def stack(kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("console-inputs")
    registry = work / "registry"
    copy_version(registry, SERVED)
    copy_version(registry, "router@1")
    weights = copy_version(registry, SERVED, "corrupt@1") / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    extra_env = {"CATALOG_CONSOLE_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "CATALOG_CONSOLE_WORKER_METRICS_URLS": "[]"}
    with console_on_own_topic(kafka_bootstrap_servers, work, registry, extra_env) as (console, topic):
        yield Stack(console.url, kafka_bootstrap_servers, topic, console.log)


def _client(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url, timeout=120, follow_redirects=False, trust_env=False)


def _token(page: httpx.Response) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert match, page.text[:2000]
    return match.group(1)


def _plain(page: httpx.Response) -> None:
    """An error page in words: the console's page, never a stack trace."""
    assert 'id="error"' in page.text, page.text[:2000]
    assert "Traceback" not in page.text and 'File "' not in page.text


def _png(size: int, noise: bool = False) -> bytes:
    buf = io.BytesIO()
    pixels = Image.effect_noise((size, size), 64).convert("RGB") if noise else Image.new("RGB", (size, size), "white")
    pixels.save(buf, format="PNG")
    return buf.getvalue()


def test_unknown_model_ref_is_a_404_page(stack: Stack) -> None:
    with _client(stack) as client:
        for path in ("/select?ref=nope@1", "/compare?ref=student@17&ref=nope@9"):
            page = client.get(path)
            assert page.status_code == 404, path
            _plain(page)
            assert "nope@" in page.text and "Unknown model" in page.text
        assert client.get("/compare?ref=student@17").status_code == 400  # one model is no comparison
        assert client.get("/select?ref=router@1").status_code == 400  # not an embedding model


def test_corrupted_artifact_is_refused_and_nothing_is_activated(stack: Stack) -> None:
    before = stack.records()
    with _client(stack) as client:
        page = client.get("/select?ref=corrupt@1")
        assert page.status_code == 409
        _plain(page)
        assert "checksum mismatch" in page.text and "Nothing was activated" in page.text
        token = _token(client.get("/select?ref=student@17"))  # a valid form, sent for the corrupted model
        posted = client.post("/select", data={"csrf_token": token, "ref": "corrupt@1", "by": "tester"})
        assert posted.status_code == 409
        _plain(posted)
    assert stack.records() == before


def test_select_without_a_valid_csrf_token_is_403_and_publishes_nothing(stack: Stack) -> None:
    before = stack.records()
    with _client(stack) as client:
        token = _token(client.get("/select?ref=student@17"))
        refused = [
            client.post("/select", data={"ref": SERVED, "by": "tester"}),  # no token
            client.post("/select", data={"ref": SERVED, "csrf_token": "0" * 64}),  # wrong token
        ]
    with _client(stack) as cookieless:  # the right token, but not this browser's cookie
        refused.append(cookieless.post("/select", data={"ref": SERVED, "csrf_token": token}))
    for page in refused:
        assert page.status_code == 403
        _plain(page)
    assert stack.records() == before


def test_get_on_the_select_url_never_activates(stack: Stack) -> None:
    before = stack.records()
    with _client(stack) as client:
        page = client.get("/select?ref=student@17")
        token = _token(page)
        assert page.status_code == 200 and 'method="post"' in page.text
        again = client.get(f"/select?ref=student@17&by=tester&csrf_token={token}")  # a form "submitted" by GET
        assert again.status_code == 200
    assert stack.records() == before


def test_a_valid_post_does_publish(stack: Stack) -> None:
    """The control of the tests above: the same console, a proper form, one new record."""
    before = stack.records()
    with _client(stack) as client:
        token = _token(client.get("/select?ref=student@17"))
        page = client.post("/select", data={"ref": SERVED, "by": "tester", "csrf_token": token})
    assert page.status_code == 200, page.text[:2000]
    after = stack.records()
    assert len(after) == len(before) + 1
    new = after[-1]
    assert new.key == ACTIVATION_KEY and f"at offset {new.offset}" in page.text
    assert ModelActivated.model_validate_json(new.value).model_ref == SERVED


def test_an_upload_that_is_not_an_image_is_a_400(stack: Stack) -> None:
    with _client(stack) as client:
        token = _token(client.get("/search"))
        page = client.post("/search", data={"csrf_token": token, "ref": SERVED},
                           files={"image": ("notes.jpg", b"these are not pixels", "image/jpeg")})  # fmt: skip
    assert page.status_code == 400
    _plain(page)
    assert "image_undecodable" in page.text or "format_unsupported" in page.text


def test_an_upload_over_the_limit_is_a_413(stack: Stack) -> None:
    big = _png(200, noise=True)
    assert len(big) > MAX_UPLOAD
    with _client(stack) as client:
        token = _token(client.get("/search"))
        page = client.post("/search", data={"csrf_token": token, "ref": SERVED},
                           files={"image": ("big.png", big, "image/png")})  # fmt: skip
    assert page.status_code == 413
    _plain(page)
    assert f"{MAX_UPLOAD:,} bytes" in page.text
    # a gigabyte announced and never sent: refused from the header alone, before any body is read
    host, port = stack.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as raw:
        raw.sendall(f"POST /search HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                    "Content-Length: 1000000000\r\n\r\n".encode())  # fmt: skip
        assert raw.recv(100).startswith(b"HTTP/1.1 413")
    with socket.create_connection((host, int(port)), timeout=60) as raw:  # a body of unknown length: asked for one
        raw.sendall(f"POST /search HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        assert raw.recv(100).startswith(b"HTTP/1.1 411")


def test_an_upload_without_a_token_is_403(stack: Stack) -> None:
    with _client(stack) as client:
        client.get("/search")
        page = client.post("/search", data={"ref": SERVED}, files={"image": ("a.png", _png(16), "image/png")})
    assert page.status_code == 403
    _plain(page)


def test_a_foreign_host_name_is_refused(stack: Stack) -> None:
    with _client(stack) as client:
        page = client.get("/", headers={"host": "rebinding.example"})
    assert page.status_code == 403


def test_unknown_pages_and_methods_are_plain_pages(stack: Stack) -> None:
    with _client(stack) as client:
        missing = client.get("/no/such/page")
        wrong_method = client.delete("/select")
    assert missing.status_code == 404 and wrong_method.status_code == 405
    _plain(missing)
    _plain(wrong_method)
    assert "Traceback" not in stack.log.read_text()  # nothing above was an unexpected error
