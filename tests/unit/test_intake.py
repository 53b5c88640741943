"""Image intake: hostile inputs must map to exact refusal codes, good inputs to RGB images.

No test leaves the machine: policy-refused URLs go through a transport that fails if called,
DNS failures are simulated, and live servers bind 127.0.0.1 on ephemeral ports.
"""

from __future__ import annotations

import base64
import io
import socket
import struct
import threading
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from processors.errors import InputRejected
from processors.intake import CODES, DecodedImage, ImageIntake, IntakeConfig

LOCAL = frozenset({"127.0.0.1"})


# ---------------------------------------------------------------- image fixtures


def encode(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def noise(w: int = 48, h: int = 32, mode: str = "RGB") -> Image.Image:
    arr = np.random.default_rng(7).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_header(width: int, height: int) -> bytes:
    """A structurally valid PNG whose IHDR declares ``width`` x ``height`` but holds one tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


JPEG = encode(noise(), "JPEG", quality=90)
PNG = encode(noise(), "PNG")
WEBP = encode(noise(), "WEBP")


def corrupt_png() -> bytes:
    data = bytearray(PNG)
    at = data.find(b"IDAT") + 12
    data[at] ^= 0xFF
    return bytes(data)


# ---------------------------------------------------------------- local HTTP server

Route = Callable[[BaseHTTPRequestHandler, "LocalServer"], None]


@dataclass
class LocalServer:
    base: str
    stop: threading.Event
    routes: dict[str, Route] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


def reply(h: BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str) -> None:
    h.send_response(status)
    headers.setdefault("Content-Length", str(len(body)))
    for key, value in headers.items():
        h.send_header(key.replace("_", "-"), value)
    h.end_headers()
    h.wfile.write(body)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path = self.path.split("?", 1)[0]
        self.server.state.hits[path] += 1
        route = self.server.state.routes.get(path)
        if route is None:
            reply(self, 404, b"not found")
        else:
            route(self, self.server.state)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence test output
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: LocalServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up on slow/oversized responses is the point of several tests


@pytest.fixture
def server() -> Iterator[LocalServer]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    host, port = httpd.server_address[:2]
    httpd.state = LocalServer(base=f"http://{host}:{port}", stop=threading.Event())
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd.state
    finally:
        httpd.state.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def serve(body: bytes, status: int = 200, **headers: str) -> Route:
    return lambda h, s: reply(h, status, body, **headers)


def slow(seconds: float, then: Route) -> Route:
    def route(h: BaseHTTPRequestHandler, s: LocalServer) -> None:
        if not s.stop.wait(seconds):
            then(h, s)

    return route


def slow_first(seconds: float, then: Route) -> Route:
    def route(h: BaseHTTPRequestHandler, s: LocalServer) -> None:
        if s.hits[h.path] == 1 and s.stop.wait(seconds):
            return
        then(h, s)

    return route


def trickle(interval: float) -> Route:
    """Keep every single read fast but the whole response slow: only a total deadline stops it."""

    def route(h: BaseHTTPRequestHandler, s: LocalServer) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(PNG)))
        h.end_headers()
        for byte in PNG:
            if s.stop.wait(interval):
                return
            h.wfile.write(bytes([byte]))
            h.wfile.flush()

    return route


def redirect(location: str | Callable[[LocalServer], str], status: int = 302) -> Route:
    def route(h: BaseHTTPRequestHandler, s: LocalServer) -> None:
        reply(h, status, Location=location(s) if callable(location) else location)

    return route


def raw(payload: bytes) -> Route:
    """Write bytes straight to the socket (HTTP/1.0: the body ends when the connection closes)."""

    def route(h: BaseHTTPRequestHandler, s: LocalServer) -> None:
        h.wfile.write(payload)
        h.close_connection = True

    return route


def refusing_transport() -> httpx.AsyncClient:
    """A client whose every request fails the test: proves a refusal happened before any I/O."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"request must not be sent: {request.url}")

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def expect_code(intake: ImageIntake, code: str, *, b64: str | None = None, url: str | None = None) -> None:
    assert code in CODES
    with pytest.raises(InputRejected) as info:
        await intake.load(image_b64=b64, image_url=url)
    assert info.value.error_code == code, info.value.message
    assert info.value.stage == "intake"
    assert info.value.retryable is False


# ---------------------------------------------------------------- hostile payloads

PAYLOAD_CASES = [
    pytest.param(None, None, "image_missing", id="neither-field"),
    pytest.param(b64(PNG), "https://example.com/a.png", "image_ambiguous", id="both-fields"),
    pytest.param("not base64 at all!!", None, "b64_invalid", id="bad-alphabet"),
    pytest.param("QUJD=", None, "b64_invalid", id="wrong-padding"),
    pytest.param("QUJDRA", None, "b64_invalid", id="missing-padding"),
    pytest.param("QQ==QQ==", None, "b64_invalid", id="data-after-padding"),
    pytest.param(b64(PNG).replace("+", "-").replace("/", "_") + "-_", None, "b64_invalid", id="urlsafe-alphabet"),
    pytest.param(b64(PNG)[:40] + "\n" + b64(PNG)[40:], None, "b64_invalid", id="embedded-newline"),
    pytest.param("ÿÿÿÿ", None, "b64_invalid", id="non-ascii"),
    pytest.param("data:text/plain;base64," + b64(PNG), None, "b64_invalid", id="data-uri-not-image"),
    pytest.param("data:image/png," + b64(PNG), None, "b64_invalid", id="data-uri-without-base64"),
    pytest.param("", None, "image_empty", id="zero-byte-payload"),
    pytest.param("data:image/png;base64,", None, "image_empty", id="empty-data-uri"),
    pytest.param("A" * 20_000, None, "payload_too_large", id="oversized-encoded"),
    pytest.param(b64(b"\x00" * 12_001), None, "payload_too_large", id="oversized-decoded"),
    pytest.param(b64(b"\x00" * 11_999) + "QQ==", None, "payload_too_large", id="oversized-by-one-byte"),
    pytest.param(b64(b"<html>definitely not an image</html>"), None, "image_undecodable", id="html"),
    pytest.param(b64(PNG[:20]), None, "image_undecodable", id="png-signature-only"),
    pytest.param(b64(JPEG[: len(JPEG) // 2]), None, "image_truncated", id="truncated-jpeg"),
    pytest.param(b64(PNG[: len(PNG) // 2]), None, "image_truncated", id="truncated-png"),
    pytest.param(b64(corrupt_png()), None, "image_corrupt", id="png-bad-idat-crc"),
    pytest.param(b64(png_with_header(100_000, 100_000)), None, "image_too_many_pixels", id="png-100k-squared"),
    pytest.param(b64(png_with_header(8_000, 6_000)), None, "image_too_many_pixels", id="png-48mp"),
    pytest.param(
        b64(png_with_header(10_000, 10_000)),
        None,
        "image_too_many_pixels",
        id="png-100mp-pil-warning-as-error",
        marks=pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning"),
    ),
    pytest.param(
        b64(png_with_header(10_000, 10_000)),
        None,
        "image_too_many_pixels",
        id="png-100mp-pil-warning-ignored",
        marks=pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    ),
    pytest.param(b64(png_with_header(0, 10)), None, "image_undecodable", id="png-zero-width"),
    pytest.param(b64(encode(noise(), "GIF")), None, "format_unsupported", id="gif"),
    pytest.param(b64(encode(noise(), "BMP")), None, "format_unsupported", id="bmp"),
    pytest.param(b64(encode(noise(), "TIFF")), None, "format_unsupported", id="tiff"),
]


@pytest.mark.parametrize(("image_b64", "image_url", "code"), PAYLOAD_CASES)
async def test_hostile_payload_is_rejected(image_b64: str | None, image_url: str | None, code: str) -> None:
    async with ImageIntake(IntakeConfig(max_bytes=12_000), http_client=refusing_transport()) as intake:
        await expect_code(intake, code, b64=image_b64, url=image_url)


# ---------------------------------------------------------------- formats: MPO is JPEG, others are named


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    """The start of an ISO-BMFF file (HEIC, AVIF...): a valid ftyp box, then a meta box."""
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + struct.pack(">I", 16) + b"meta" + bytes(8)


def mpo(first: tuple[int, int, int], second: tuple[int, int, int]) -> bytes:
    """A two-frame multi-picture JPEG, as phones write them (Pillow reports the format as MPO)."""
    frames = [Image.new("RGB", (40, 30), first), Image.new("RGB", (20, 10), second)]
    return encode(frames[0], "MPO", save_all=True, append_images=frames[1:])


def pillow_can_write(fmt: str) -> bool:
    try:
        encode(noise(), fmt)
    except (OSError, KeyError, ValueError):
        return False
    return True


KNOWN_FORMATS = [
    pytest.param(ftyp(b"heic", b"mif1", b"heic"), "HEIC", id="heic"),
    pytest.param(ftyp(b"mif1", b"MiHE", b"miaf", b"heic"), "HEIC", id="heic-generic-major-brand"),
    pytest.param(ftyp(b"heix", b"mif1"), "HEIC", id="heix"),
    pytest.param(ftyp(b"mif1", b"mif1"), "HEIF", id="heif-generic"),
    pytest.param(ftyp(b"avif", b"mif1", b"miaf"), "AVIF", id="avif-header"),
    pytest.param(ftyp(b"isom", b"mp41"), "ISO-BMFF (isom)", id="mp4-video"),
    pytest.param(encode(noise(), "TIFF"), "TIFF", id="tiff"),
    pytest.param(b"II*\x00" + b"\xff" * 40, "TIFF", id="tiff-broken-header"),
    pytest.param(encode(noise(), "BMP"), "BMP", id="bmp"),
    pytest.param(encode(noise(), "GIF"), "GIF", id="gif"),
    pytest.param(b"GIF89a" + b"\xff" * 3, "GIF", id="gif-truncated-header"),
    pytest.param(b"\x00\x00\x00\x0cJXL \r\n\x87\n" + bytes(64), "JPEG XL", id="jpeg-xl-container"),
    pytest.param(b"\xff\x0a\xfa\x7f\x01" + bytes(64), "JPEG XL", id="jpeg-xl-codestream"),
    pytest.param(b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(64), "JPEG2000", id="jp2-header"),
    pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF", id="pdf"),
    pytest.param(b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="9"/>', "SVG", id="svg"),
    pytest.param(b"\xef\xbb\xbf  <svg width='9'></svg>", "SVG", id="svg-bom"),
    pytest.param(b"8BPS\x00\x01" + bytes(40), "PSD", id="psd"),
    pytest.param(
        encode(noise(), "AVIF") if pillow_can_write("AVIF") else b"",
        "AVIF",
        id="avif-real",
        marks=pytest.mark.skipif(not pillow_can_write("AVIF"), reason="Pillow built without AVIF"),
    ),
    pytest.param(
        encode(noise(), "JPEG2000") if pillow_can_write("JPEG2000") else b"",
        "JPEG2000",
        id="jpeg2000-real",
        marks=pytest.mark.skipif(not pillow_can_write("JPEG2000"), reason="Pillow built without OpenJPEG"),
    ),
]


@pytest.mark.parametrize(("data", "name"), KNOWN_FORMATS)
async def test_known_unsupported_format_is_named(data: bytes, name: str) -> None:
    async with ImageIntake(IntakeConfig(), http_client=refusing_transport()) as intake:
        with pytest.raises(InputRejected) as info:
            await intake.load(image_b64=b64(data), image_url=None)
    assert info.value.error_code == "format_unsupported", info.value.message
    assert f"format {name} not in" in info.value.message


async def test_broken_file_of_an_allowed_format_stays_undecodable() -> None:
    config = IntakeConfig(allowed_formats=frozenset({"GIF", "PNG"}))
    async with ImageIntake(config, http_client=refusing_transport()) as intake:
        await expect_code(intake, "image_undecodable", b64=b64(b"GIF89a" + b"\xff" * 3))
        assert (await intake.load(image_b64=b64(encode(noise(), "GIF")), image_url=None)).source_format == "GIF"


async def test_mpo_from_a_phone_is_a_jpeg_and_its_first_frame_is_used() -> None:
    data = mpo((250, 0, 0), (0, 0, 250))
    assert Image.open(io.BytesIO(data)).format == "MPO"
    decoded = await load_b64(data)
    assert (decoded.source_format, decoded.width, decoded.height) == ("JPEG", 40, 30)
    red, green, blue = decoded.image.getpixel((20, 15))
    assert red > 200 and green < 40 and blue < 40


async def test_mpo_is_refused_where_jpeg_is_not_allowed() -> None:
    async with ImageIntake(IntakeConfig(allowed_formats=frozenset({"PNG"})), refusing_transport()) as intake:
        with pytest.raises(InputRejected) as info:
            await intake.load(image_b64=b64(mpo((250, 0, 0), (0, 0, 250))), image_url=None)
    assert (info.value.error_code, "MPO" in info.value.message) == ("format_unsupported", True)


# ---------------------------------------------------------------- hostile URLs (no I/O allowed)

URL_CASES = [
    pytest.param("http://169.254.169.254/latest/meta-data/", "url_host_forbidden", id="cloud-metadata"),
    pytest.param("http://localhost/x.png", "url_host_forbidden", id="localhost"),
    pytest.param("http://10.0.0.1/x.png", "url_host_forbidden", id="rfc1918-10"),
    pytest.param("http://192.168.1.1/x.png", "url_host_forbidden", id="rfc1918-192"),
    pytest.param("http://127.0.0.1/x.png", "url_host_forbidden", id="loopback-not-allowlisted"),
    pytest.param("http://[::1]/x.png", "url_host_forbidden", id="ipv6-loopback"),
    pytest.param("http://0.0.0.0/x.png", "url_host_forbidden", id="unspecified"),
    pytest.param("http://2130706433/x.png", "url_host_forbidden", id="decimal-ip"),
    pytest.param("http://0x7f000001/x.png", "url_host_forbidden", id="hex-ip"),
    pytest.param("http://0177.0.0.1/x.png", "url_invalid", id="octal-ip-unparseable"),
    pytest.param("http://[::ffff:169.254.169.254]/", "url_host_forbidden", id="ipv4-mapped-metadata"),
    pytest.param("http://100.64.0.1/x.png", "url_host_forbidden", id="carrier-grade-nat"),
    pytest.param("http://224.0.0.1/x.png", "url_host_forbidden", id="multicast"),
    pytest.param("ftp://example.com/x.png", "url_scheme_forbidden", id="ftp"),
    pytest.param("javascript:alert(1)", "url_scheme_forbidden", id="javascript"),
    pytest.param("data:image/png;base64,iVBORw0KGgo=", "url_scheme_forbidden", id="data-uri-as-url"),
    pytest.param("gopher://example.com/", "url_scheme_forbidden", id="gopher"),
    pytest.param("file:///etc/passwd", "file_url_disabled", id="file-url-disabled"),
    pytest.param("http://user:secret@example.com/x.png", "url_credentials_forbidden", id="credentials"),
    pytest.param("http://token@example.com/x.png", "url_credentials_forbidden", id="username-only"),
    pytest.param("http:///x.png", "url_invalid", id="no-host"),
    pytest.param("http://exa mple.com/x.png", "url_invalid", id="space-in-host"),
    pytest.param("http://example.com/\r\nX-Injected: 1", "url_invalid", id="crlf-injection"),
    pytest.param("http://example.com:99999/x.png", "url_invalid", id="port-out-of-range"),
    pytest.param("//example.com/x.png", "url_invalid", id="scheme-relative"),
    pytest.param("", "url_invalid", id="empty-url"),
    pytest.param("http://example.com/" + "a" * 5000, "url_invalid", id="overlong-url"),
    # malformed hosts httpx accepts but crashes on later (UnicodeEncodeError, IDNAError): refused up front
    pytest.param("http://[fe80::1%25\u00e9]/x.png", "url_invalid", id="ipv6-zone-id-non-ascii"),
    pytest.param("http://[fe80::1%25eth0]/x.png", "url_invalid", id="ipv6-zone-id"),
    pytest.param("http://[1::2::3]/x.png", "url_invalid", id="ipv6-two-double-colons"),
    pytest.param("http://xn--zz.com/x.png", "url_invalid", id="bad-punycode"),
    pytest.param("http://img.xn--a.xn--b/x.png", "url_invalid", id="punycode-to-control-char"),
    pytest.param("http://a..b/x.png", "url_invalid", id="empty-label"),
    pytest.param("http://" + "a" * 64 + ".com/x.png", "url_invalid", id="label-over-63"),
    pytest.param("http://" + ("a" * 63 + ".") * 4 + "com/x.png", "url_invalid", id="name-over-253"),
    pytest.param("http://ex%41mple.com/x.png", "url_invalid", id="percent-in-host"),
    pytest.param("http://a!b.com/x.png", "url_invalid", id="sub-delim-in-host"),
    pytest.param("http://example.com:\u0663/x.png", "url_invalid", id="non-ascii-port-digit"),
    pytest.param("http://example.com:0/x.png", "url_invalid", id="port-zero"),
    pytest.param("http://\udc80.com/x.png", "url_invalid", id="lone-surrogate"),
]


@pytest.mark.parametrize(("url", "code"), URL_CASES)
async def test_hostile_url_is_rejected_before_any_request(url: str, code: str) -> None:
    async with ImageIntake(IntakeConfig(), http_client=refusing_transport()) as intake:
        await expect_code(intake, code, url=url)


def fake_resolver(*addresses: str) -> Callable[[str, int], Awaitable[list[str]]]:
    """A resolver for ``ImageIntake(resolver=...)`` that answers ``addresses`` and never touches DNS."""

    async def resolve(host: str, port: int) -> list[str]:
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    ("addresses", "code"),
    [
        pytest.param((), "url_host_unresolvable", id="nxdomain"),
        pytest.param(("93.184.216.34", "10.1.2.3"), "url_host_forbidden", id="one-private-answer-is-enough"),
        pytest.param(("169.254.169.254",), "url_host_forbidden", id="dns-to-metadata"),
    ],
)
async def test_dns_answers_are_vetted(addresses: tuple[str, ...], code: str) -> None:
    resolver = fake_resolver(*addresses)
    async with ImageIntake(IntakeConfig(), http_client=refusing_transport(), resolver=resolver) as intake:
        await expect_code(intake, code, url="https://images.seller.example/p.png")


# ---------------------------------------------------------------- file:// URLs


@pytest.fixture
def file_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.png").write_bytes(PNG)
    (tmp_path / "secret.png").write_bytes(PNG)
    (root / "escape.png").symlink_to(tmp_path / "secret.png")
    (root / "dir").mkdir()
    return root


@pytest.mark.parametrize(
    ("make_url", "code"),
    [
        pytest.param(lambda r: "file:///etc/passwd", "file_outside_root", id="etc-passwd-outside-root"),
        pytest.param(lambda r: f"file://{r}/../secret.png", "file_outside_root", id="dotdot"),
        pytest.param(lambda r: f"file://{r}/%2e%2e/secret.png", "file_outside_root", id="encoded-dotdot"),
        pytest.param(lambda r: f"file://{r}/escape.png", "file_outside_root", id="symlink-escape"),
        pytest.param(lambda r: f"file://{r}/missing.png", "file_not_found", id="missing"),
        pytest.param(lambda r: f"file://{r}/%252e%252e/secret.png", "file_not_found", id="decoded-only-once"),
        pytest.param(lambda r: f"file://{r}/dir", "file_not_found", id="directory"),
        pytest.param(lambda r: f"file://evil.example{r}/ok.png", "url_invalid", id="remote-file-host"),
    ],
)
async def test_file_url_confined_to_root(file_root: Path, make_url: Callable[[Path], str], code: str) -> None:
    config = IntakeConfig(allow_file_urls=True, file_root=file_root)
    async with ImageIntake(config, refusing_transport()) as intake:
        await expect_code(intake, code, url=make_url(file_root))


async def test_file_url_too_large(file_root: Path) -> None:
    config = IntakeConfig(allow_file_urls=True, file_root=file_root, max_bytes=100)
    async with ImageIntake(config, refusing_transport()) as intake:
        await expect_code(intake, "payload_too_large", url=f"file://{file_root}/ok.png")


async def test_file_url_inside_root_loads(file_root: Path) -> None:
    config = IntakeConfig(allow_file_urls=True, file_root=file_root)
    async with ImageIntake(config, refusing_transport()) as intake:
        decoded = await intake.load(image_b64=None, image_url=f"file://{file_root}/ok.png")
    assert (decoded.source_format, decoded.width, decoded.height) == ("PNG", 48, 32)


def test_file_urls_need_a_root() -> None:
    with pytest.raises(ValueError, match="file_root"):
        IntakeConfig(allow_file_urls=True)


# ---------------------------------------------------------------- live local server

# Generous timeout where timing is not under test (CI boxes are slow); 0.3 s where it is.
LIVE = {"fetch_timeout_s": 5.0, "retry_backoff_s": 0.01, "private_host_allowlist": LOCAL}
FAST = {**LIVE, "fetch_timeout_s": 0.3}

SERVER_CASES = [
    pytest.param({"/img": slow(2.0, serve(PNG))}, "fetch_timeout", FAST, id="slow-server"),
    pytest.param({"/img": trickle(0.05)}, "fetch_timeout", FAST, id="trickling-server"),
    pytest.param({}, "fetch_http_status", {}, id="404"),
    pytest.param({"/img": serve(b"no", 403)}, "fetch_http_status", {}, id="403"),
    pytest.param({"/img": serve(b"oops", 500)}, "fetch_http_status", {}, id="500-every-attempt"),
    pytest.param({"/img": serve(b"", 302)}, "fetch_http_status", {}, id="redirect-without-location"),
    pytest.param(
        {"/img": redirect("http://169.254.169.254/latest/meta-data/")},
        "redirect_forbidden",
        {},
        id="redirect-metadata",
    ),
    pytest.param({"/img": redirect("http://10.0.0.1/x.png")}, "redirect_forbidden", {}, id="redirect-private"),
    pytest.param({"/img": redirect("file:///etc/passwd")}, "redirect_forbidden", {}, id="redirect-file"),
    pytest.param({"/img": redirect("ftp://example.com/x")}, "redirect_forbidden", {}, id="redirect-ftp"),
    pytest.param({"/img": redirect("/img")}, "redirect_forbidden", {}, id="redirect-loop"),
    pytest.param(
        {"/img": redirect("/a"), "/a": redirect("/b"), "/b": redirect("/img")},
        "redirect_forbidden",
        {},
        id="cycle",
    ),
    pytest.param(
        {
            "/img": redirect("/a"),
            "/a": redirect("/b"),
            "/b": redirect("/c"),
            "/c": redirect("/d"),
            "/d": serve(PNG),
        },
        "redirect_forbidden",
        {},
        id="too-many-redirects",
    ),
    pytest.param(
        {"/img": raw(b"HTTP/1.0 200 OK\r\nContent-Type: image/png\r\n\r\n" + b"\x00" * 50_000)},
        "fetch_too_large",
        {"max_bytes": 20_000},
        id="streamed-body-over-limit",
    ),
    pytest.param(
        {"/img": serve(b"\x00" * 50_000)},
        "fetch_too_large",
        {"max_bytes": 20_000},
        id="content-length-over-limit",
    ),
    pytest.param(
        {"/img": raw(b"HTTP/1.0 200 OK\r\nContent-Length: 5000\r\n\r\n" + PNG[:100])},
        "fetch_failed",
        {},
        id="content-length-overstated",
    ),
    pytest.param({"/img": raw(b"garbage, not http\r\n\r\n")}, "fetch_failed", {}, id="not-http"),
    pytest.param({"/img": serve(b"")}, "image_empty", {}, id="empty-200"),
    pytest.param({"/img": serve(b"<html></html>", content_type="image/png")}, "image_undecodable", {}, id="html-200"),
    pytest.param({"/img": serve(encode(noise(), "GIF"))}, "format_unsupported", {}, id="gif-200"),
]


@pytest.mark.parametrize(("routes", "code", "overrides"), SERVER_CASES)
async def test_hostile_server_is_rejected(
    server: LocalServer, routes: dict[str, Route], code: str, overrides: dict[str, Any]
) -> None:
    server.routes.update(routes)
    async with ImageIntake(IntakeConfig(**{**LIVE, **overrides})) as intake:
        await expect_code(intake, code, url=server.url("/img"))


async def test_content_length_understated_is_read_no_further(server: LocalServer) -> None:
    """A Content-Length smaller than the body must not let the extra bytes through (h11 stops)."""
    server.routes["/img"] = raw(b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n" + PNG)
    async with ImageIntake(IntakeConfig(**LIVE)) as intake:
        await expect_code(intake, "image_truncated", url=server.url("/img"))


async def test_5xx_and_timeouts_are_retried_then_rejected(server: LocalServer) -> None:
    server.routes["/img"] = serve(b"down", 503)
    async with ImageIntake(IntakeConfig(**LIVE, fetch_attempts=3)) as intake:
        await expect_code(intake, "fetch_http_status", url=server.url("/img"))
    assert server.hits["/img"] == 3


async def test_4xx_is_not_retried(server: LocalServer) -> None:
    async with ImageIntake(IntakeConfig(**LIVE, fetch_attempts=3)) as intake:
        await expect_code(intake, "fetch_http_status", url=server.url("/missing.png"))
    assert server.hits["/missing.png"] == 1


async def test_retry_rescues_a_slow_first_attempt(server: LocalServer) -> None:
    server.routes["/img"] = slow_first(2.0, serve(PNG))
    async with ImageIntake(IntakeConfig(**{**LIVE, "fetch_timeout_s": 0.5, "fetch_attempts": 3})) as intake:
        decoded = await intake.load(image_b64=None, image_url=server.url("/img"))
    assert decoded.source_format == "PNG"
    assert server.hits["/img"] >= 2


async def test_retry_rescues_a_503(server: LocalServer) -> None:
    state = {"n": 0}

    def flaky(h: BaseHTTPRequestHandler, s: LocalServer) -> None:
        state["n"] += 1
        reply(h, 503) if state["n"] == 1 else reply(h, 200, JPEG)

    server.routes["/img"] = flaky
    async with ImageIntake(IntakeConfig(**LIVE)) as intake:
        decoded = await intake.load(image_b64=None, image_url=server.url("/img"))
    assert decoded.source_format == "JPEG"


async def test_http_from_allowlisted_loopback(server: LocalServer) -> None:
    server.routes["/p.webp"] = serve(WEBP, content_type="image/webp")
    async with ImageIntake(IntakeConfig(**LIVE)) as intake:
        decoded = await intake.load(image_b64=None, image_url=server.url("/p.webp"))
    assert (decoded.source_format, decoded.image.mode, decoded.byte_count) == ("WEBP", "RGB", len(WEBP))


async def test_relative_redirects_within_limit_are_followed(server: LocalServer) -> None:
    server.routes.update(
        {"/img": redirect("/a", 301), "/a": redirect("b", 307), "/b": redirect("/c"), "/c": serve(PNG)}
    )
    async with ImageIntake(IntakeConfig(**LIVE)) as intake:
        decoded = await intake.load(image_b64=None, image_url=server.url("/img"))
    assert decoded.source_format == "PNG"


async def test_hostname_allowlist_entry(server: LocalServer) -> None:
    server.routes["/img"] = serve(PNG)
    url = server.url("/img").replace("127.0.0.1", "localhost")
    config = IntakeConfig(fetch_timeout_s=1.0, private_host_allowlist=frozenset({"localhost"}))
    async with ImageIntake(config) as intake:
        assert (await intake.load(image_b64=None, image_url=url)).source_format == "PNG"


async def test_cidr_allowlist_entry(server: LocalServer) -> None:
    server.routes["/img"] = serve(PNG)
    async with ImageIntake(IntakeConfig(private_host_allowlist=frozenset({"127.0.0.0/8"}))) as intake:
        assert (await intake.load(image_b64=None, image_url=server.url("/img"))).width == 48


# ---------------------------------------------------------------- good payloads


@pytest.mark.parametrize(
    ("payload", "fmt"),
    [
        pytest.param(b64(JPEG), "JPEG", id="jpeg"),
        pytest.param(b64(PNG), "PNG", id="png"),
        pytest.param(b64(WEBP), "WEBP", id="webp"),
        pytest.param("data:image/png;base64," + b64(PNG), "PNG", id="data-uri"),
        pytest.param("DATA:IMAGE/JPEG;BASE64," + b64(JPEG), "JPEG", id="data-uri-upper"),
        pytest.param("  " + b64(PNG) + "\n", "PNG", id="outer-whitespace"),
    ],
)
async def test_good_b64_decodes_to_rgb(payload: str, fmt: str) -> None:
    async with ImageIntake(IntakeConfig(), refusing_transport()) as intake:
        decoded = await intake.load(image_b64=payload, image_url=None)
    assert isinstance(decoded, DecodedImage)
    assert (decoded.source_format, decoded.image.mode, decoded.image.size) == (fmt, "RGB", (48, 32))
    assert (decoded.width, decoded.height) == (48, 32)


async def load_b64(data: bytes) -> DecodedImage:
    async with ImageIntake(IntakeConfig(), refusing_transport()) as intake:
        return await intake.load(image_b64=b64(data), image_url=None)


async def test_rgba_is_composited_over_white() -> None:
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    img.putpixel((0, 0), (0, 0, 255, 255))
    decoded = await load_b64(encode(img, "PNG"))
    assert decoded.image.mode == "RGB"
    assert decoded.image.getpixel((1, 1)) == (255, 255, 255)
    assert decoded.image.getpixel((0, 0)) == (0, 0, 255)


@pytest.mark.parametrize(
    ("img", "fmt"),
    [
        pytest.param(noise(mode="P"), "PNG", id="palette"),
        pytest.param(noise(mode="L"), "PNG", id="grey"),
        pytest.param(noise(mode="LA"), "PNG", id="grey-alpha"),
        pytest.param(noise(mode="1"), "PNG", id="bilevel"),
        pytest.param(noise(mode="CMYK"), "JPEG", id="cmyk-jpeg"),
        pytest.param(noise(mode="RGBA"), "WEBP", id="rgba-webp"),
    ],
)
async def test_modes_are_normalised_to_rgb(img: Image.Image, fmt: str) -> None:
    decoded = await load_b64(encode(img, fmt))
    assert (decoded.image.mode, decoded.image.size) == ("RGB", (48, 32))


async def test_palette_transparency_becomes_white() -> None:
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    decoded = await load_b64(encode(img, "PNG", transparency=1))
    assert decoded.image.getpixel((2, 2)) == (255, 255, 255)


async def test_16bit_grey_is_scaled_not_clipped() -> None:
    img = Image.fromarray(np.full((4, 4), 0x8000, dtype=np.uint16))
    decoded = await load_b64(encode(img, "PNG"))
    assert decoded.image.getpixel((0, 0)) == (128, 128, 128)


async def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    decoded = await load_b64(encode(noise(), "JPEG", exif=exif.tobytes()))
    assert (decoded.width, decoded.height) == (32, 48)


# ---------------------------------------------------------------- batches and lifecycle


async def test_load_many_keeps_errors_in_their_slots(server: LocalServer) -> None:
    server.routes["/ok"] = serve(JPEG)
    refs = [
        (b64(PNG), None),
        ("@@@", None),
        (None, server.url("/ok")),
        (None, None),
        (None, "http://169.254.169.254/"),
        (b64(WEBP), None),
        (b64(JPEG[: len(JPEG) // 2]), None),
    ]
    async with ImageIntake(IntakeConfig(**LIVE)) as intake:
        results = await intake.load_many(refs, concurrency=3)
    kinds = [r.source_format if isinstance(r, DecodedImage) else r.error_code for r in results]
    assert kinds == [
        "PNG",
        "b64_invalid",
        "JPEG",
        "image_missing",
        "url_host_forbidden",
        "WEBP",
        "image_truncated",
    ]


async def test_load_many_wraps_unexpected_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    intake = ImageIntake(IntakeConfig(), http_client=refusing_transport())
    original = intake.load

    async def sometimes_broken(*, image_b64: str | None, image_url: str | None) -> DecodedImage:
        if image_b64 == "boom":
            raise RuntimeError("bug")
        return await original(image_b64=image_b64, image_url=image_url)

    monkeypatch.setattr(intake, "load", sometimes_broken)
    results = await intake.load_many([("boom", None), (b64(PNG), None)])
    assert isinstance(results[0], InputRejected) and results[0].error_code == "internal_error"
    assert isinstance(results[1], DecodedImage)


async def test_aclose_leaves_borrowed_client_open() -> None:
    client = httpx.AsyncClient()
    intake = ImageIntake(IntakeConfig(), http_client=client)
    await intake.aclose()
    assert not client.is_closed
    await client.aclose()
    owned = ImageIntake(IntakeConfig())
    await owned.aclose()
    assert owned._client.is_closed


def test_codes_are_distinct() -> None:
    assert len(CODES) == len(set(CODES))
