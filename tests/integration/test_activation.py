"""Activation against the real broker: a verified model is published under key ``active`` and read back as the
latest; a bad model publishes nothing; ``catalog models activate`` does the same from a shell.

Every test has its own compacted one-partition models topic and a registry in its tmp folder (copies of
the shipped versions), so nothing in the repository's registry is touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_store.activation_log import read_activations
from model_store.registry import WEIGHTS_FILE, ModelRegistry
from streams.activation import ActivationRefused, activate, read_latest_activation
from streams.events import ACTIVATION_KEY, ModelActivated
from streams.settings import Settings
from tests.kafka_backend import TopicFactory
from tests.support.console import copy_version, topic_records

pytestmark = pytest.mark.integration
SERVED = "student@17"
COMPACTED = {"cleanup.policy": "compact"}


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    root = tmp_path / "registry"
    copy_version(root, SERVED)
    copy_version(root, SERVED, "candidate@1")
    copy_version(root, "router@1")  # a registered model that is not an embedding model
    corrupt = copy_version(root, SERVED, "corrupt@1") / WEIGHTS_FILE
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the manifest's sha256 no longer matches
    corrupt.write_bytes(bytes(data))
    (copy_version(root, SERVED, "incomplete@1") / WEIGHTS_FILE).unlink()
    return root


@pytest.fixture
async def settings(
    kafka_bootstrap_servers: str, topic_factory: TopicFactory, registry: Path, tmp_path: Path
) -> Settings:
    topic = await topic_factory("models", 1, configs=COMPACTED)
    return Settings(kafka_bootstrap=kafka_bootstrap_servers, topic_models=topic, registry_dir=registry,
                    activation_log=tmp_path / "activations.jsonl", model_ref=SERVED)  # fmt: skip


async def test_an_activation_is_published_under_key_active_and_read_back_as_the_latest(settings: Settings) -> None:
    assert await read_latest_activation(settings, 20) is None  # empty topic
    first = await activate(settings, "candidate@1", "tester")
    second = await activate(settings, SERVED, "tester-2")

    digest = ModelRegistry(settings.registry_dir).load_manifest("candidate@1").files[WEIGHTS_FILE]
    assert (first.offset, second.offset) == (0, 1)
    assert first.event.sha256 == digest and first.event.collection == "catalog_candidate_1"
    assert first.event.previous_ref == SERVED  # nothing on the topic yet: the configured model was in force
    assert second.event.previous_ref == "candidate@1"

    latest = await read_latest_activation(settings, 20)
    assert latest is not None and latest.offset == 1 and latest.event == second.event

    records = await topic_records(settings.kafka_bootstrap, settings.topic_models)
    assert [r.key for r in records] == [ACTIVATION_KEY, ACTIVATION_KEY]
    assert ModelActivated.model_validate_json(records[0].value).model_ref == "candidate@1"

    log = read_activations(settings.activation_log)
    assert [(e.model_ref, e.offset, e.activated_by) for e in log] == [
        ("candidate@1", 0, "tester"),
        (SERVED, 1, "tester-2"),
    ]


@pytest.mark.parametrize(
    ("ref", "code"),
    [("corrupt@1", "checksum_mismatch"), ("incomplete@1", "artifact_missing"), ("router@1", "not_embedding"),
     ("nope@1", "unknown_model"), ("lite0-imagenet@1", "builtin_model"), ("../x", "bad_ref")],
)  # fmt: skip
async def test_a_bad_model_publishes_nothing(settings: Settings, ref: str, code: str) -> None:
    with pytest.raises(ActivationRefused) as refused:
        await activate(settings, ref, "tester")
    assert refused.value.code == code
    assert await topic_records(settings.kafka_bootstrap, settings.topic_models) == []
    assert read_activations(settings.activation_log) == []


async def test_reading_a_missing_topic_gives_none(settings: Settings) -> None:
    absent = settings.model_copy(update={"topic_models": settings.topic_models + "-never-created"})
    assert await read_latest_activation(absent, 20) is None


async def test_a_latest_value_that_is_not_an_activation_is_an_error(settings: Settings) -> None:
    from aiokafka import AIOKafkaProducer

    await activate(settings, "candidate@1", "tester")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic_models, b'{"model_ref": "x"}', key=ACTIVATION_KEY)
    finally:
        await producer.stop()
    with pytest.raises(ActivationRefused) as refused:  # never silently fall back to the older record
        await read_latest_activation(settings, 20)
    assert refused.value.code == "invalid_activation"


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CATALOG_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CATALOG_TOPIC_MODELS": settings.topic_models,
        "CATALOG_REGISTRY_DIR": str(settings.registry_dir),
        "CATALOG_ACTIVATION_LOG": str(settings.activation_log),
    }
    command = [sys.executable, "-m", "streams.cli", "models", "activate", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)


async def test_the_command_line_activates_and_refuses(settings: Settings) -> None:
    refused = _cli(settings, "corrupt@1")
    assert refused.returncode == 2
    error = json.loads(refused.stderr.strip().splitlines()[-1])
    assert error["error"] == "checksum_mismatch" and error["published"] is False
    assert await topic_records(settings.kafka_bootstrap, settings.topic_models) == []

    done = _cli(settings, "candidate@1", "--by", "ci")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["model_ref"], out["offset"], out["activated_by"]) == ("candidate@1", 0, "ci")
    latest = await read_latest_activation(settings, 20)
    assert latest is not None and latest.event.model_ref == "candidate@1"
