"""Delivery settings pinned in code, Kafka client settings, secrets, the repeat filter and the health app."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
import structlog

from streams.faust_config import app_kwargs, delivery_summary
from streams.health import HealthState, health_wsgi_app
from streams.kafka_clients import client_kwargs, faust_credentials, security_summary
from streams.log_dedup import RepeatFilter
from streams.settings import Settings

HOSTILE_FAUST_ENV = {
    "PRODUCER_ACKS": "1",
    "BROKER_SESSION_TIMEOUT": "999",
    "BROKER_HEARTBEAT_INTERVAL": "300",
    "BROKER_REBALANCE_TIMEOUT": "999",
    "BROKER_COMMIT_INTERVAL": "120",
    "STREAM_WAIT_EMPTY": "true",
    "CONSUMER_GROUP_INSTANCE_ID": "hijacked",
    "TOPIC_REPLICATION_FACTOR": "3",
    "BROKER_URL": "kafka://elsewhere:1",
    "APP_DATADIR": "/tmp/elsewhere",
}


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(worker_state_dir=tmp_path / "state", **kw)  # type: ignore[arg-type]


def test_unprefixed_faust_variables_cannot_override_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import faust

    for name, value in HOSTILE_FAUST_ENV.items():
        monkeypatch.setenv(name, value)
    assert faust.App("control", producer_acks=-1).conf.producer_acks == 1  # the hazard, without env={}
    settings = _settings(tmp_path)
    conf = faust.App(settings.app_id, **app_kwargs(settings)).conf
    assert conf.producer_acks == -1
    assert (conf.broker_session_timeout, conf.broker_heartbeat_interval) == (6.0, 1.0)
    assert conf.broker_rebalance_timeout == 20.0
    assert conf.broker_commit_interval == 1.0
    assert conf.stream_wait_empty is False
    assert conf.consumer_group_instance_id is None
    assert conf.topic_replication_factor == 1
    assert [str(u) for u in conf.broker] == ["kafka://127.0.0.1:9092"]
    assert str(conf.datadir).startswith(str(tmp_path))


def test_group_settings_and_instance_id_reach_faust(tmp_path: Path) -> None:
    import faust

    settings = _settings(
        tmp_path,
        kafka_session_timeout_s=12,
        kafka_heartbeat_interval_s=2,
        worker_instance_id="w-1",
        topic_replication_factor=3,
        topic_min_insync_replicas=2,
        kafka_bootstrap="a:9092,b:9093",
    )
    conf = faust.App(settings.app_id, **app_kwargs(settings)).conf
    summary = delivery_summary(conf, settings)
    assert summary["session_timeout_s"] == 12 and summary["heartbeat_interval_s"] == 2
    assert summary["instance_id"] == "w-1"
    assert (summary["replication_factor"], summary["min_insync_replicas"]) == (3, 2)
    assert [str(u) for u in conf.broker] == ["kafka://a:9092", "kafka://b:9093"]


@pytest.mark.parametrize(
    ("batch", "buffer", "expected"), [(256, None, 1024), (8, None, 256), (256, 256, 256), (64, 32, 32)]
)
def test_faust_reads_ahead_four_batches_unless_set(
    tmp_path: Path, batch: int, buffer: int | None, expected: int
) -> None:
    import faust

    settings = _settings(tmp_path, batch_max_size=batch, stream_buffer_max=buffer)
    assert faust.App(settings.app_id, **app_kwargs(settings)).conf.stream_buffer_maxsize == expected


@pytest.mark.parametrize(
    "bad",
    [
        {"kafka_heartbeat_interval_s": 7.0},  # not below the session timeout
        {"kafka_session_timeout_s": 100.0},  # above the request timeout
        {"kafka_security_protocol": "SASL_PLAINTEXT"},  # no credentials
        {"kafka_ssl_keyfile": "/k.pem"},  # a key without a certificate
    ],
)
def test_settings_refuse_combinations_kafka_would_refuse(bad: dict, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        _settings(tmp_path, **bad)


def _sasl(tmp_path: Path, protocol: str = "SASL_PLAINTEXT") -> Settings:
    return _settings(
        tmp_path,
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password="pa55-w0rd-secret",
        milvus_token="milvus-token-secret",
    )


def test_sasl_settings_reach_every_client_kind(tmp_path: Path) -> None:
    settings = _sasl(tmp_path)
    kwargs = client_kwargs(settings)
    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("svc", "pa55-w0rd-secret")
    assert "ssl_context" not in kwargs
    creds = faust_credentials(settings)
    assert (creds.protocol.value, creds.mechanism.value, creds.password) == (
        "SASL_PLAINTEXT",
        "SCRAM-SHA-512",
        "pa55-w0rd-secret",
    )
    with_tls = client_kwargs(_sasl(tmp_path, "SASL_SSL"))
    assert with_tls["security_protocol"] == "SASL_SSL" and with_tls["ssl_context"] is not None
    assert faust_credentials(_sasl(tmp_path, "SASL_SSL")).protocol.value == "SASL_SSL"
    assert client_kwargs(_settings(tmp_path)) == {
        "bootstrap_servers": ["127.0.0.1:9092"],
        "security_protocol": "PLAINTEXT",
    }
    assert faust_credentials(_settings(tmp_path)) is None


def test_secrets_never_appear_in_repr_dump_or_logs(tmp_path: Path) -> None:
    import faust

    settings = _sasl(tmp_path)
    texts = [repr(settings), str(settings), settings.model_dump_json(), json.dumps(security_summary(settings))]
    conf = faust.App(settings.app_id, **app_kwargs(settings)).conf
    texts.append(json.dumps(delivery_summary(conf, settings)))
    texts.append(repr(faust_credentials(settings)))
    out = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()], logger_factory=structlog.PrintLoggerFactory(out)
    )
    try:
        structlog.get_logger().info("delivery_settings", **delivery_summary(conf, settings), settings=settings)
    finally:
        structlog.reset_defaults()
    texts.append(out.getvalue())
    for text in texts:
        assert "pa55-w0rd-secret" not in text and "milvus-token-secret" not in text, text
    assert settings.index_config().token == "milvus-token-secret"  # unwrapped only where the client needs it


def _record(name: str, msg: str, level: int = logging.ERROR, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_repeat_filter_lets_one_record_per_window_through_with_a_count() -> None:
    now = [0.0]
    f = RepeatFilter(10.0, clock=lambda: now[0])
    assert f.filter(_record("aiokafka", "Unable connect to node %s: %s", logging.ERROR, 1, "refused"))
    passed = 0
    for i in range(500):  # 100 a second for 5 s
        now[0] = i / 100
        passed += f.filter(_record("aiokafka", "Unable connect to node %s: %s", logging.ERROR, 1, "refused"))
    assert passed == 0
    assert f.filter(_record("faust", "other message"))  # another kind is not held back
    assert f.filter(_record("aiokafka", "low level", logging.INFO))  # below WARNING: untouched
    now[0] = 10.5
    summary = _record("aiokafka", "Unable connect to node %s: %s", logging.ERROR, 1, "refused")
    assert f.filter(summary)
    assert "500 more like this" in summary.getMessage()
    assert RepeatFilter(0).filter(_record("aiokafka", "x")) and RepeatFilter(0).filter(_record("aiokafka", "x"))


def _call(app, path: str) -> tuple[str, dict | str]:  # noqa: ANN001 - a WSGI callable
    got: dict[str, str] = {}

    def start_response(status: str, headers: list) -> None:
        got["status"] = status

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET", "QUERY_STRING": ""}, start_response))
    return got["status"], json.loads(body) if path != "/metrics" else body.decode()


def test_health_app_serves_liveness_readiness_and_metrics() -> None:
    from prometheus_client import CollectorRegistry, Counter

    registry = CollectorRegistry()
    Counter("catalog_probe", "a metric", registry=registry).inc()
    health = HealthState()
    app = health_wsgi_app(registry, health)
    assert _call(app, "/healthz")[0].startswith("200")
    status, body = _call(app, "/readyz")
    assert status.startswith("503") and body["ready"] is False
    health.models_loaded = health.milvus_ok = health.assigned = True
    health.tick()
    assert _call(app, "/readyz")[0].startswith("200")
    health.milvus_ok = False
    assert _call(app, "/readyz")[0].startswith("503")
    assert "catalog_probe_total 1.0" in _call(app, "/metrics")[1]
    health.startup_error = "CATALOG_MILVUS_URI: refused"
    assert _call(app, "/healthz")[0].startswith("503")
