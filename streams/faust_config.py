"""Every keyword the worker passes to ``faust.App``, fixed in code from the one Settings object.

Why a module of its own: faust reads unprefixed environment variables of its own
(``PRODUCER_ACKS``, ``BROKER_SESSION_TIMEOUT``, ``STREAM_WAIT_EMPTY``, ...) and lets them
override the constructor's keywords (``faust.types.settings.base._init_settings`` asks
``Settings.getenv`` for every setting's ``env_name``, which reads ``Settings.env``,
``os.environ`` by default). Passing ``env={}`` gives faust an empty mapping to read, so
nothing outside ``CATALOG_*`` can change delivery, and no global environment is touched.
"""

from __future__ import annotations

from typing import Any

from streams.kafka_clients import bootstrap_list, faust_credentials, security_summary
from streams.settings import Settings


def app_kwargs(settings: Settings) -> dict[str, Any]:
    """``faust.App(settings.app_id, **app_kwargs(settings))``."""
    return {
        "env": {},  # see the module docstring: faust reads no environment variable at all
        "broker": [f"kafka://{host}" for host in bootstrap_list(settings)],
        "broker_credentials": faust_credentials(settings),
        "key_serializer": "raw",
        "value_serializer": "raw",
        "store": "memory://",
        "datadir": str(settings.worker_state_dir / settings.app_id),
        "web_enabled": False,
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication_factor,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,  # acks=all: an output counts only once every in-sync replica has it
        "stream_buffer_maxsize": settings.stream_buffer(),  # what the consumer reads ahead, in events
        "broker_commit_every": max(settings.batch_max_size, 100),
        "broker_commit_interval": 1.0,
        "stream_wait_empty": False,  # un-acked events are simply redelivered; never block shutdown on them
        # Group membership: how fast a dead worker's partitions move (docs/operations.md, "Recovery after a crash").
        "broker_session_timeout": settings.kafka_session_timeout_s,
        "broker_heartbeat_interval": settings.kafka_heartbeat_interval_s,
        "broker_rebalance_timeout": settings.kafka_rebalance_timeout_s,
        "broker_max_poll_interval": settings.kafka_max_poll_interval_s,
        "broker_request_timeout": settings.kafka_request_timeout_s,
        "consumer_group_instance_id": settings.worker_instance_id,
    }


def delivery_summary(conf: Any, settings: Settings) -> dict[str, Any]:
    """The effective delivery settings of a built app (``app.conf``), for the start-up log line."""
    return {
        "acks": "all" if conf.producer_acks == -1 else conf.producer_acks,
        "session_timeout_s": conf.broker_session_timeout,
        "heartbeat_interval_s": conf.broker_heartbeat_interval,
        "rebalance_timeout_s": conf.broker_rebalance_timeout,
        "max_poll_interval_s": conf.broker_max_poll_interval,
        "request_timeout_s": conf.broker_request_timeout,
        "commit_interval_s": conf.broker_commit_interval,
        "commit_every": conf.broker_commit_every,
        "stream_wait_empty": conf.stream_wait_empty,
        "instance_id": conf.consumer_group_instance_id,
        "replication_factor": conf.topic_replication_factor,
        "min_insync_replicas": settings.topic_min_insync_replicas,
        **security_summary(settings),
    }
