"""One factory of Kafka client settings, so faust, the admin client and the CLI's clients connect alike.

Why one place: a production cluster needs TLS and SASL on every connection; a client built
elsewhere with only ``bootstrap_servers`` would fail (or worse, talk plaintext).
Secrets stay ``SecretStr`` in the settings and are unwrapped only here, into client kwargs.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from streams.settings import Settings


def bootstrap_list(settings: Settings) -> list[str]:
    """``host:port`` entries of ``CATALOG_KAFKA_BOOTSTRAP`` (comma separated)."""
    return [h.strip() for h in settings.kafka_bootstrap.split(",") if h.strip()]


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL / SASL_SSL (system CAs unless a CA file is set); None otherwise."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    key_password = settings.kafka_ssl_key_password
    return create_ssl_context(
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
        password=key_password.get_secret_value() if key_password else None,
    )


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments every aiokafka client (producer, consumer, admin) gets."""
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {"bootstrap_servers": bootstrap_list(settings), "security_protocol": protocol}
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        kwargs |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }
    return kwargs


def faust_credentials(settings: Settings) -> Any:
    """faust's ``broker_credentials`` for the same settings (None for PLAINTEXT)."""
    import faust

    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = ssl_context(settings)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        ssl_context=context,  # set for SASL_SSL only: faust then speaks SASL_SSL
        mechanism=settings.kafka_sasl_mechanism,
    )


def security_summary(settings: Settings) -> dict[str, Any]:
    """What the logs may say about the connection: never a password."""
    summary: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL_"):
        summary |= {"sasl_mechanism": settings.kafka_sasl_mechanism, "sasl_username": settings.kafka_sasl_username}
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        summary["ssl_cafile"] = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else "system"
        summary["ssl_client_cert"] = settings.kafka_ssl_certfile is not None
    return summary


def producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """A producer with acks=all (the delivery guarantee the README documents) unless overridden."""
    return AIOKafkaProducer(**{**client_kwargs(settings), "acks": "all", **overrides})


def consumer(settings: Settings, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **{**client_kwargs(settings), **overrides})


def admin(settings: Settings, **overrides: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**{**client_kwargs(settings), **overrides})


def reindex_consumer(settings: Settings, group_id: str, **overrides: Any) -> AIOKafkaConsumer:
    """A re-index consumer: partitions come from ``assign()``, the group id only stores its offsets.

    It never subscribes, so it never joins (or rebalances) the group: the worker that owns a
    partition decides who re-indexes it. Offsets are committed by hand after the upsert, and a
    partition without a commit starts from the beginning of the (compacted) log.
    """
    return consumer(
        settings,
        **{"group_id": group_id, "enable_auto_commit": False, "auto_offset_reset": "earliest", **overrides},
    )
