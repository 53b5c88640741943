"""DNS rebinding: the fetch connects to the address the URL policy vetted, never to a second answer.

A real rebinding is played on loopback: the seller's host is ``localhost``; the injected resolver
answers 127.0.0.2 (allow-listed, the "public" image server) when the policy asks, and 127.0.0.1
afterwards, which is also what the system's resolver says for ``localhost``. An "internal" server
listens on 127.0.0.1 with the same port, so a fetch that resolved the name again would land
there. Nothing leaves the machine: every name involved is ``localhost`` or an IP literal.
"""

from __future__ import annotations

import io
import ipaddress
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from processors.errors import InputRejected
from processors.intake import ImageIntake, IntakeConfig
from processors.intake.pinning import PinnedTransport, pinned_addresses
from tests.support.http_images import ImageHttpServer

PUBLIC, INTERNAL = "127.0.0.2", "127.0.0.1"


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 12, 3), colour, dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


class ScriptedResolver:
    """Answers the n-th lookup with ``answers[n]`` (the last one repeats) and counts the lookups."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = [list(a) for a in answers]
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers[min(len(self.calls), len(self.answers)) - 1]


def free_port_on_both() -> int:
    """A port free on 127.0.0.2 and on 127.0.0.1, so both servers can share it."""
    for _ in range(20):
        with socket.socket() as a, socket.socket() as b:
            a.bind((PUBLIC, 0))
            port = a.getsockname()[1]
            try:
                b.bind((INTERNAL, port))
            except OSError:
                continue
            return int(port)
    raise RuntimeError("no port free on both loopback addresses")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[ImageHttpServer, ImageHttpServer]]:
    """(public, internal): same port, different loopback address, different image bytes."""
    (tmp_path / "public").mkdir()
    (tmp_path / "internal").mkdir()
    (tmp_path / "public" / "img.png").write_bytes(png((0, 200, 0)))
    (tmp_path / "public" / "next.png").write_bytes(png((0, 0, 200)))
    (tmp_path / "internal" / "img.png").write_bytes(png((200, 0, 0)))  # "cloud credentials"
    (tmp_path / "internal" / "next.png").write_bytes(png((200, 0, 0)))
    port = free_port_on_both()
    with ExitStack() as stack:
        public = stack.enter_context(ImageHttpServer(tmp_path / "public", host=PUBLIC, port=port))
        internal = stack.enter_context(ImageHttpServer(tmp_path / "internal", host=INTERNAL, port=port))
        yield public, internal


CONFIG = IntakeConfig(fetch_timeout_s=5.0, fetch_attempts=1, private_host_allowlist=frozenset({PUBLIC}))


def colour_of(image: Image.Image) -> tuple[int, int, int]:
    return tuple(image.getpixel((0, 0)))  # type: ignore[return-value]


async def test_fetch_connects_to_the_vetted_address_not_a_second_answer(
    servers: tuple[ImageHttpServer, ImageHttpServer],
) -> None:
    public, internal = servers
    resolver = ScriptedResolver([PUBLIC], [INTERNAL])
    async with ImageIntake(CONFIG, resolver=resolver) as intake:
        decoded = await intake.load(image_b64=None, image_url=f"http://localhost:{public.port}/img.png")
    assert colour_of(decoded.image) == (0, 200, 0)
    assert resolver.calls == [("localhost", public.port)]  # resolved once, by the policy
    assert internal.requests == []
    assert public.requests == [("/img.png", f"localhost:{public.port}")]  # Host keeps the name


async def test_redirect_hops_are_pinned_too(servers: tuple[ImageHttpServer, ImageHttpServer]) -> None:
    public, internal = servers
    resolver = ScriptedResolver([PUBLIC], [PUBLIC], [INTERNAL])
    target = f"http://localhost:{public.port}/next.png"
    async with ImageIntake(CONFIG, resolver=resolver) as intake:
        decoded = await intake.load(image_b64=None, image_url=f"http://localhost:{public.port}/redirect?to={target}")
    assert colour_of(decoded.image) == (0, 0, 200)
    assert len(resolver.calls) == 2  # one vetting per hop, none by httpx
    assert internal.requests == []
    assert [p for p, _ in public.requests] == ["/redirect", "/next.png"]


async def test_redirect_hop_rebound_to_a_private_address_is_refused(
    servers: tuple[ImageHttpServer, ImageHttpServer],
) -> None:
    public, internal = servers
    resolver = ScriptedResolver([PUBLIC], [INTERNAL])
    target = f"http://localhost:{public.port}/img.png"
    async with ImageIntake(CONFIG, resolver=resolver) as intake:
        with pytest.raises(InputRejected) as info:
            await intake.load(image_b64=None, image_url=f"http://localhost:{public.port}/redirect?to={target}")
    assert info.value.error_code == "redirect_forbidden"
    assert "url_host_forbidden" in info.value.message
    assert internal.requests == []


async def test_next_vetted_address_is_tried_when_one_is_down(servers: tuple[ImageHttpServer, ImageHttpServer]) -> None:
    public, _ = servers
    resolver = ScriptedResolver(["127.0.0.3", PUBLIC])  # nothing listens on 127.0.0.3
    config = IntakeConfig(fetch_timeout_s=5.0, fetch_attempts=1, private_host_allowlist=frozenset({"127.0.0.0/8"}))
    async with ImageIntake(config, resolver=resolver) as intake:
        decoded = await intake.load(image_b64=None, image_url=f"http://localhost:{public.port}/img.png")
    assert colour_of(decoded.image) == (0, 200, 0)


async def test_transport_refuses_a_host_it_was_not_given(servers: tuple[ImageHttpServer, ImageHttpServer]) -> None:
    public, internal = servers
    async with httpx.AsyncClient(transport=PinnedTransport()) as client:
        with pytest.raises(httpx.ConnectError, match="not vetted"):
            await client.get(f"http://localhost:{public.port}/img.png")
        other_port = pinned_addresses("localhost", public.port + 1, [ipaddress.ip_address(PUBLIC)])
        with other_port, pytest.raises(httpx.ConnectError, match="not vetted"):  # pins are per port too
            await client.get(f"http://localhost:{public.port}/img.png")
    assert public.requests == internal.requests == []


# ---------------------------------------------------------------- TLS: SNI and certificate by host name


def self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName=DNS:{name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
@pytest.mark.parametrize(("cert_name", "ok"), [("localhost", True), ("other.example", False)])
async def test_https_to_a_pinned_address_verifies_the_host_names_certificate(
    tmp_path: Path, cert_name: str, ok: bool
) -> None:
    """The connection goes to the vetted IP, but TLS still checks the certificate of the URL's host."""
    cert, key = self_signed(tmp_path, cert_name)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    (tmp_path / "img.png").write_bytes(png((0, 200, 0)))
    with ImageHttpServer(tmp_path, host=PUBLIC, tls=server_tls) as server:
        url = f"https://localhost:{server.port}/img.png"
        client = httpx.AsyncClient(transport=PinnedTransport(verify=client_tls), trust_env=False)
        async with client, ImageIntake(CONFIG, http_client=client, resolver=ScriptedResolver([PUBLIC])) as intake:
            if ok:
                decoded = await intake.load(image_b64=None, image_url=url)
                assert colour_of(decoded.image) == (0, 200, 0)
                assert server.requests == [("/img.png", f"localhost:{server.port}")]
            else:
                with pytest.raises(InputRejected) as info:
                    await intake.load(image_b64=None, image_url=url)
                assert info.value.error_code == "fetch_failed"
                assert "CERTIFICATE_VERIFY_FAILED" in info.value.message or "certificate" in info.value.message
