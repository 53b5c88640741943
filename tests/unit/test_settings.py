"""The one settings object: defaults, CATALOG_* environment, TOML file, and the derived stage configs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from processors.embedding import EmbedderConfig
from processors.intake import IntakeConfig
from processors.pipeline import PipelineConfig
from processors.vector_index import VectorIndexConfig
from streams.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CATALOG_* variable of the caller's shell leaks in, and no stray file is found by accident."""
    for name in list(os.environ):
        if name.upper().startswith("CATALOG_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def toml_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    s = Settings()
    assert s.config_file is None
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.app_id == "catalog-enricher"
    assert (s.topic_images, s.topic_enriched, s.topic_dlq, s.topic_labels) == (
        "catalog.images.v1",
        "catalog.enriched.v1",
        "catalog.images.dlq.v1",
        "catalog.labels.v1",
    )
    assert (s.batch_max_size, s.batch_max_wait_s) == (256, 0.5)
    assert (s.retry_backoff_initial_s, s.retry_backoff_max_s) == (0.5, 30.0)
    assert (s.knn_k, s.similar_k, s.trusted_label_sources) == (20, 10, ["confirmed"])
    assert s.allowed_image_formats == ["JPEG", "PNG", "WEBP"]
    assert s.private_host_allowlist == []
    assert (s.allow_file_urls, s.file_url_root, s.milvus_token, s.torch_threads) == (False, None, None, None)


def test_env_overrides_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG_KAFKA_BOOTSTRAP", "broker:29092")
    monkeypatch.setenv("CATALOG_KNN_K", "7")
    monkeypatch.setenv("CATALOG_BATCH_MAX_WAIT_S", "0.25")
    monkeypatch.setenv("CATALOG_ALLOW_FILE_URLS", "true")
    monkeypatch.setenv("CATALOG_FILE_URL_ROOT", "/srv/images")
    monkeypatch.setenv("CATALOG_MILVUS_TOKEN", "secret")
    s = Settings()
    assert s.kafka_bootstrap == "broker:29092"
    assert s.knn_k == 7
    assert s.batch_max_wait_s == 0.25
    assert s.allow_file_urls is True
    assert s.file_url_root == Path("/srv/images")
    assert s.milvus_token is not None and s.milvus_token.get_secret_value() == "secret"


def test_env_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("catalog_similar_k", "3")
    assert Settings().similar_k == 3


def test_unprefixed_env_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KNN_K", "5")
    assert Settings().knn_k == 20


def test_list_values_from_json_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG_TRUSTED_LABEL_SOURCES", '["confirmed", "seller"]')
    monkeypatch.setenv("CATALOG_ALLOWED_IMAGE_FORMATS", '["jpeg", "png"]')
    monkeypatch.setenv("CATALOG_PRIVATE_HOST_ALLOWLIST", '["127.0.0.1", "10.0.0.0/8"]')
    s = Settings()
    assert s.trusted_label_sources == ["confirmed", "seller"]
    assert s.allowed_image_formats == ["jpeg", "png"]
    assert s.private_host_allowlist == ["127.0.0.1", "10.0.0.0/8"]


@pytest.mark.parametrize(("name", "value"), [("CATALOG_KNN_K", "many"), ("CATALOG_TRUSTED_LABEL_SOURCES", "[oops")])
def test_bad_env_value_is_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises((ValidationError, ValueError)):
        Settings()


def test_toml_file_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = toml_file(
        tmp_path,
        'knn_k = 7\nmilvus_uri = "/data/gallery.db"\ntrusted_label_sources = ["confirmed", "seller"]\n',
    )
    monkeypatch.setenv("CATALOG_CONFIG_FILE", str(path))
    s = Settings()
    assert s.config_file == path
    assert s.knn_k == 7
    assert s.milvus_uri == "/data/gallery.db"
    assert s.trusted_label_sources == ["confirmed", "seller"]
    assert s.similar_k == 10  # untouched keys keep their defaults


def test_env_wins_over_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = toml_file(tmp_path, "knn_k = 7\nsimilar_k = 4\n")
    monkeypatch.setenv("CATALOG_CONFIG_FILE", str(path))
    monkeypatch.setenv("CATALOG_KNN_K", "9")
    s = Settings()
    assert s.knn_k == 9
    assert s.similar_k == 4


def test_init_wins_over_env_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CATALOG_CONFIG_FILE", str(toml_file(tmp_path, "knn_k = 7\n")))
    monkeypatch.setenv("CATALOG_KNN_K", "9")
    assert Settings(knn_k=11).knn_k == 11


def test_toml_file_from_init_argument(tmp_path: Path) -> None:
    path = toml_file(tmp_path, "knn_k = 7\n")
    s = Settings(config_file=path)
    assert s.config_file == path
    assert s.knn_k == 7


def test_unknown_init_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="knn_kk"):
        Settings(knn_kk=3)  # type: ignore[call-arg]


def test_unknown_toml_key_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CATALOG_CONFIG_FILE", str(toml_file(tmp_path, "knn_k = 7\nknn_kk = 3\n")))
    with pytest.raises(ValidationError, match="knn_kk"):
        Settings()


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.knn_k = 3  # type: ignore[misc]


def test_intake_config_carries_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CATALOG_ALLOWED_IMAGE_FORMATS", '["jpeg", "Png"]')
    monkeypatch.setenv("CATALOG_PRIVATE_HOST_ALLOWLIST", '["127.0.0.1"]')
    s = Settings(
        max_image_bytes=1234,
        max_image_pixels=5678,
        fetch_timeout_s=1.5,
        fetch_attempts=3,
        allow_file_urls=True,
        file_url_root=tmp_path,
    )
    config = s.intake_config()
    assert isinstance(config, IntakeConfig)
    assert (config.max_bytes, config.max_pixels) == (1234, 5678)
    assert config.allowed_formats == frozenset({"JPEG", "PNG"})  # upper-cased for PIL's format names
    assert (config.fetch_timeout_s, config.fetch_attempts) == (1.5, 3)
    assert (config.allow_file_urls, config.file_root) == (True, tmp_path)
    assert config.private_host_allowlist == frozenset({"127.0.0.1"})


def test_default_intake_config_matches_intake_defaults() -> None:
    assert Settings().intake_config() == IntakeConfig()


def test_index_config_carries_values() -> None:
    s = Settings(
        milvus_uri="http://milvus:19530",
        milvus_token="t",
        milvus_collection_prefix="shop",
        milvus_index_type="FLAT",
        milvus_search_ef=64,
    )
    assert s.index_config() == VectorIndexConfig(
        uri="http://milvus:19530", collection_prefix="shop", token="t", index_type="FLAT", search_ef=64
    )


def test_pipeline_config_carries_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG_TRUSTED_LABEL_SOURCES", '["confirmed", "seller"]')
    s = Settings(knn_k=5, similar_k=3, inference_lanes=3)
    assert s.pipeline_config() == PipelineConfig(
        knn_k=5, similar_k=3, trusted_label_sources=frozenset({"confirmed", "seller"}), upsert=True, inference_lanes=3
    )
    assert s.pipeline_config(upsert=False).upsert is False


def test_embedder_config_carries_values() -> None:
    s = Settings(model_ref="x@1", model_image_size=96, device="cuda:0", torch_threads=2, cpu_graphs=False)
    assert s.embedder_config() == EmbedderConfig(
        model_ref="x@1", image_size=96, device="cuda:0", torch_threads=2, max_forward_batch=None
    )  # a GPU takes the whole batch in one forward pass


def test_default_derived_configs_match_stage_defaults() -> None:
    s = Settings(inference_lanes=1, cpu_graphs=False)
    assert s.pipeline_config() == PipelineConfig()
    assert s.index_config() == VectorIndexConfig()  # flushes: None, the backend decides (VectorIndex.flush_every_rows)
    assert s.embedder_config() == EmbedderConfig()


@pytest.mark.parametrize(
    ("device", "cores", "lanes", "threads", "in_flight"),
    [("cpu", 2, 2, 1, 3), ("cpu", 16, 2, 8, 3), ("cpu", 1, 1, None, 2), ("cuda", 16, 1, None, 2)],
)
def test_inference_lanes_default_shares_the_cores_out(
    monkeypatch: pytest.MonkeyPatch, device: str, cores: int, lanes: int, threads: int | None, in_flight: int
) -> None:
    monkeypatch.setattr("streams.settings.usable_cores", lambda: cores)
    s = Settings(device=device)
    assert (s.lanes(), s.threads_per_lane(), s.in_flight()) == (lanes, threads, in_flight)
    assert s.pipeline_config().inference_lanes == lanes
    assert s.embedder_config().torch_threads == threads


def test_stated_lanes_threads_and_in_flight_win() -> None:
    s = Settings(inference_lanes=3, torch_threads=2, pipeline_in_flight=5)
    assert (s.lanes(), s.threads_per_lane(), s.in_flight()) == (3, 2, 5)


@pytest.mark.parametrize("stated", [{"torch_threads": 4}, {"pipeline_in_flight": 1}])
def test_threads_set_by_hand_or_one_batch_in_flight_keep_one_lane(
    monkeypatch: pytest.MonkeyPatch, stated: dict[str, int]
) -> None:
    monkeypatch.setattr("streams.settings.usable_cores", lambda: 8)
    assert Settings(**stated).lanes() == 1  # type: ignore[arg-type]


def test_callers_of_one_batch_at_a_time_get_one_lane_on_every_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.settings.usable_cores", lambda: 8)
    s = Settings().one_batch_at_a_time()
    assert (s.lanes(), s.threads_per_lane(), s.pipeline_config().inference_lanes) == (1, None, 1)


def test_more_lanes_than_batches_in_flight_is_refused() -> None:
    with pytest.raises(ValueError, match="inference_lanes"):
        Settings(inference_lanes=3, pipeline_in_flight=2)


def test_quality_scoring_rules_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.pipeline_factory import scoring_config

    food_first = {"white": 0.2, "black": 0.1, "solid": 0.5, "gradient": 0.5, "life_scene": 1.0}
    monkeypatch.setenv("CATALOG_QUALITY_BACKGROUND_TABLE", json.dumps({"default": food_first}))
    monkeypatch.setenv("CATALOG_QUALITY_WEIGHTS", '{"background": 2, "position": 1, "visual": 1}')
    monkeypatch.setenv("CATALOG_QUALITY_POSITION", '{"target_fill": 0.7}')
    config = scoring_config(Settings())
    assert config.background_table.row("anything") == food_first
    assert config.weights.normalised().to_dict() == {"background": 0.5, "position": 0.25, "visual": 0.25}
    assert config.position.target_fill == 0.7
    monkeypatch.delenv("CATALOG_QUALITY_BACKGROUND_TABLE")
    default = scoring_config(Settings())
    assert default.background_table.row("digital")["white"] == 1.0


def test_bad_background_table_is_refused() -> None:
    from streams.pipeline_factory import scoring_config

    with pytest.raises(ValueError, match="default"):
        scoring_config(Settings(quality_background_table={"food": {"white": 1.0}}))


def test_worker_state_goes_to_the_configured_folder(tmp_path: Path) -> None:
    """faust's default is '<app id>-data' in the working directory; a worker must not litter it."""
    from streams.app import create_app

    state = tmp_path / "nested" / "state"
    app = create_app(Settings(app_id="shop-a", worker_state_dir=state))
    assert Path(app.conf.datadir) == state / "shop-a"
    assert state.is_dir()
    assert Settings().worker_state_dir == Path("data/worker")


def test_quality_models_can_be_pinned_per_role(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rollback of one quality model is a setting, not a code change; the others stay shipped."""
    from model_store.quality.scorer import DEFAULT_REFS
    from streams.pipeline_factory import build_quality

    monkeypatch.setenv("CATALOG_QUALITY_MODELS", '{"background": "quality-background@2"}')
    scorer = build_quality(Settings(quality_mode="on"))
    assert scorer is not None
    assert scorer.refs == {**DEFAULT_REFS, "background": "quality-background@2"}
    image = np.full((1, 64, 64, 3), 255, dtype=np.uint8)
    assert scorer.score_batch(image)[0].background.label == "white"  # the pinned model scores
    monkeypatch.delenv("CATALOG_QUALITY_MODELS")
    assert build_quality(Settings(quality_mode="on")).refs == dict(DEFAULT_REFS)


def test_unknown_quality_role_or_version_is_refused() -> None:
    from model_store.registry import RegistryError
    from streams.pipeline_factory import build_quality

    with pytest.raises(ValidationError, match="background"):
        Settings(quality_models={"backdrop": "quality-background@2"})
    with pytest.raises(RegistryError):
        build_quality(Settings(quality_mode="on", quality_models={"visual": "quality-visual@99"}))


def test_the_index_bench_leaves_flushes_to_each_backend_unless_set() -> None:
    from streams.commands.bench_index import _config_for

    lite_default = Settings()
    server = _config_for(lite_default, "http://127.0.0.1:19530", "t0ken")
    assert (server.uri, server.token, server.flush_every_rows) == ("http://127.0.0.1:19530", "t0ken", None)
    assert _config_for(lite_default, "/tmp/x/lite.db").flush_every_rows is None
    stated = Settings(milvus_flush_every_rows=512)  # a value the operator set is kept for every URI
    assert _config_for(stated, "http://127.0.0.1:19530").flush_every_rows == 512
    assert lite_default.milvus_uri != "http://127.0.0.1:19530"  # the settings passed in are left as they were
