"""The console's gatekeeping, in process: loopback clients and Host names only, and form tokens bound to a cookie.

The app is the real one (``create_app``) on an empty registry; Kafka is unreachable on purpose, which
the pages must survive. The live-server versions of these checks are in tests/integration/test_console_inputs.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette 1.x asks for httpx2; its httpx client works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from streams.console.app import create_app
from streams.console.security import CSRF_COOKIE, Csrf, _host_name, is_loopback
from streams.settings import Settings


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("10.0.0.5", False), ("192.168.1.2", False), ("example.com", False), ("", False), (None, False),
     ("0.0.0.0", False), ("localhost.example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("127.0.0.1:8090", "127.0.0.1"),
        ("localhost", "localhost"),
        ("[::1]:8090", "::1"),
        ("evil.example:80", "evil.example"),
    ],
)
def test_host_header_without_port(header: str, host: str) -> None:
    assert _host_name(header) == host


def test_form_token_is_bound_to_its_cookie_and_key() -> None:
    csrf = Csrf()
    cookie = csrf.new_cookie()
    token = csrf.form_token(cookie)
    assert csrf.valid(cookie, token)
    assert not csrf.valid(csrf.new_cookie(), token)  # another browser's cookie
    assert not csrf.valid(cookie, token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert not csrf.valid(cookie, None) and not csrf.valid(None, token) and not csrf.valid("", "")
    assert not Csrf().valid(cookie, token)  # a restarted console has another key


@pytest.fixture
def app_settings(tmp_path: Path) -> Settings:
    registry = tmp_path / "registry"
    registry.mkdir()
    return Settings(
        registry_dir=registry,
        activation_log=tmp_path / "activations.jsonl",
        kafka_bootstrap="127.0.0.1:1",  # nothing listens: pages must still render, saying so
        milvus_uri=str(tmp_path / "milvus.db"),
        console_worker_metrics_urls=[],
        topic_models="unit-console-models",
    )


def _client(settings: Settings, client_host: str, base_url: str = "http://127.0.0.1:8090") -> TestClient:
    return TestClient(create_app(settings), base_url=base_url, client=(client_host, 40000),
                      raise_server_exceptions=False)  # fmt: skip


def test_loopback_console_refuses_a_remote_client(app_settings: Settings) -> None:
    with _client(app_settings, "203.0.113.7") as remote:
        response = remote.get("/healthz")
    assert response.status_code == 403
    assert "local clients only" in response.text


def test_loopback_console_refuses_a_foreign_host_name(app_settings: Settings) -> None:
    with _client(app_settings, "127.0.0.1", base_url="http://rebound.example:8090") as client:
        assert client.get("/healthz").status_code == 403


def test_loopback_console_serves_a_local_client(app_settings: Settings) -> None:
    with _client(app_settings, "127.0.0.1") as local:
        assert local.get("/healthz").text == "ok"
        page = local.get("/")
    assert page.status_code == 200
    assert "did not answer" in page.text  # the Kafka banner, not an error page
    assert CSRF_COOKIE in page.cookies


def test_console_bound_to_all_interfaces_does_not_filter_clients(app_settings: Settings) -> None:
    settings = app_settings.model_copy(update={"console_host": "0.0.0.0"})  # noqa: S104 - the case under test
    with _client(settings, "203.0.113.7") as remote:
        assert remote.get("/healthz").status_code == 200


def test_post_without_a_matching_token_is_403(app_settings: Settings) -> None:
    with _client(app_settings, "127.0.0.1") as local:
        local.get("/")  # sets the cookie
        no_token = local.post("/select", data={"ref": "student@17"})
        wrong = local.post("/select", data={"ref": "student@17", "csrf_token": "0" * 64})
    assert no_token.status_code == 403 and wrong.status_code == 403
    assert "Nothing was activated" in no_token.text


def test_an_unexpected_error_is_a_plain_page(app_settings: Settings) -> None:
    broken = Path(app_settings.registry_dir) / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "manifest.json").write_text("{ not json")  # the registry listing raises
    with _client(app_settings, "127.0.0.1") as local:
        page = local.get("/")
    assert page.status_code == 500
    assert "Something went wrong" in page.text
    assert "Traceback" not in page.text and 'File "' not in page.text


def test_select_while_kafka_is_down_is_503(app_settings: Settings) -> None:
    from tests.support.console import copy_version

    copy_version(Path(app_settings.registry_dir), "student@17")
    with _client(app_settings, "127.0.0.1") as local:
        page = local.get("/select?ref=student@17")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        posted = local.post("/select", data={"ref": "student@17", "by": "tester", "csrf_token": token})
    assert page.status_code == 200
    assert posted.status_code == 503 and "Nothing was activated" in posted.text
    assert not Path(app_settings.activation_log).exists()
