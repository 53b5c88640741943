"""Start-up checks that fail fast with one clear line, instead of a retry loop of stack traces.

Why a separate rule for start-up: during operation an unreachable Kafka or Milvus is an
outage, and the worker waits it out (retries forever, nothing dead-lettered). At start-up
the same symptom is usually a wrong setting, so the worker tries for ``startup_timeout_s``
and then exits with code 2 and a ``startup_failed`` line naming the setting and the cause.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from aiokafka.errors import KafkaError

from streams.settings import Settings

T = TypeVar("T")
EXIT_STARTUP_FAILED = 2
log = structlog.get_logger("catalog.startup")

_AUTH_WORDS = ("authentication", "sasl", "unauthenticated", "unauthorized", "credential", "password", "token")


class StartupError(RuntimeError):
    """A setting that makes the worker unusable: which one, and what the client said."""

    def __init__(self, setting: str, cause: str) -> None:
        super().__init__(f"{setting}: {cause}")
        self.setting = setting
        self.cause = cause

    def log(self) -> None:
        log.error("startup_failed", setting=self.setting, cause=self.cause, exit_code=EXIT_STARTUP_FAILED)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= 500 else text[:500] + "..."


def kafka_setting_for(settings: Settings, exc: BaseException) -> str:
    """Which settings a Kafka start-up failure points at."""
    text = _short(exc).lower()
    if settings.kafka_security_protocol.startswith("SASL_") and any(w in text for w in _AUTH_WORDS):
        return "CATALOG_KAFKA_SASL_USERNAME / CATALOG_KAFKA_SASL_PASSWORD"
    if "ssl" in text or "certificate" in text:
        return "CATALOG_KAFKA_SECURITY_PROTOCOL / CATALOG_KAFKA_SSL_*"
    if "replication" in text or "insync" in text:
        return "CATALOG_TOPIC_REPLICATION_FACTOR / CATALOG_TOPIC_MIN_INSYNC_REPLICAS"
    return "CATALOG_KAFKA_BOOTSTRAP"


def milvus_setting_for(exc: BaseException) -> str:
    """Which settings a failure of the gallery's start (connect, create collection) points at."""
    text = str(exc).lower()  # VectorIndex says which call failed: "milvus connect failed: ..."
    if any(w in text for w in _AUTH_WORDS):
        return "CATALOG_MILVUS_TOKEN"
    if "alias" in text:
        return "CATALOG_MILVUS_COLLECTION_PREFIX"
    if "connect failed" in text:
        return "CATALOG_MILVUS_URI"
    if "create collection" in text or "index type" in text:
        return "CATALOG_MILVUS_INDEX_TYPE / CATALOG_MILVUS_INDEX_PARAMS"
    return "CATALOG_MILVUS_URI"


def _is_auth_failure(exc: BaseException) -> bool:
    name = type(exc).__name__.lower()
    return "auth" in name or "sasl" in name


async def within_startup(
    settings: Settings,
    what: str,
    action: Callable[[], Awaitable[T]],
    setting_for: Callable[[BaseException], str],
    retry_on: tuple[type[BaseException], ...],
    diagnose: Callable[[BaseException], Awaitable[BaseException]] | None = None,
) -> T:
    """Run ``action`` until it succeeds or ``startup_timeout_s`` passed; then raise ``StartupError``.

    Authentication failures are not retried: waiting does not fix a wrong password.
    """
    deadline = time.monotonic() + settings.startup_timeout_s
    delay = settings.retry_backoff_initial_s
    while True:
        left = deadline - time.monotonic()
        try:
            return await asyncio.wait_for(action(), timeout=max(left, 0.1))
        except retry_on as exc:
            last: BaseException = exc
        except TimeoutError as exc:
            last = exc
        if diagnose is not None:
            last = await diagnose(last)
        if _is_auth_failure(last):  # not retried: waiting does not fix a login
            raise StartupError(setting_for(last), f"{what} failed: {_short(last)}") from last
        if time.monotonic() + delay >= deadline:
            cause = f"{what} did not succeed within {settings.startup_timeout_s:g}s (CATALOG_STARTUP_TIMEOUT_S): "
            raise StartupError(setting_for(last), cause + _short(last)) from last
        log.warning("startup_retry", what=what, error=_short(last), retry_in_s=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, settings.retry_backoff_max_s)


async def _kafka_connection_cause(settings: Settings, exc: BaseException) -> BaseException:
    """aiokafka reports a refused login as "Unable to bootstrap"; one direct connection tells the real cause."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import KafkaConnectionError

    from streams.kafka_clients import client_kwargs

    if not isinstance(exc, KafkaConnectionError):
        return exc
    kwargs = client_kwargs(settings)
    for server in kwargs.pop("bootstrap_servers"):
        host, _, port = server.rpartition(":")
        try:
            conn = await asyncio.wait_for(create_conn(host, int(port), request_timeout_ms=5000, **kwargs), 10)
        except Exception as cause:  # noqa: BLE001 - the cause is what we are after
            return cause
        conn.close()
    return exc


async def ensure_topics_at_startup(settings: Settings) -> list[str]:
    """``ensure_topics`` within the start-up budget: proves bootstrap, security and credentials work."""
    from streams.topics import ensure_topics

    return await within_startup(
        settings,
        "connecting to Kafka and creating the topics",
        lambda: ensure_topics(settings),
        lambda exc: kafka_setting_for(settings, exc),
        (KafkaError, OSError),
        lambda exc: _kafka_connection_cause(settings, exc),
    )
