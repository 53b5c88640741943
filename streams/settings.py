"""The one settings object: read from ``CATALOG_*`` environment variables and an optional TOML file.

Built once at the entry point and passed down; stage configs are derived from it,
so no module below reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from processors.embedding import EmbedderConfig
from processors.intake import IntakeConfig
from processors.pipeline import PipelineConfig
from processors.vector_index import VectorIndexConfig


class Settings(BaseSettings):
    """Every knob of the worker and the CLI; see the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="CATALOG_", frozen=True, extra="forbid")

    config_file: Path | None = Field(None, description="optional TOML file with the same keys (lower case)")

    kafka_bootstrap: str = "127.0.0.1:9092"
    app_id: str = Field("catalog-enricher", description="faust app id = consumer group")
    worker_state_dir: Path = Field(
        Path("./data/worker"), description="faust's local state folder (tables); one per app id below it"
    )
    topic_images: str = "catalog.images.v1"
    topic_enriched: str = "catalog.enriched.v1"
    topic_dlq: str = "catalog.images.dlq.v1"
    topic_labels: str = "catalog.labels.v1"
    topic_partitions: int = 4
    batch_max_size: int = 64
    batch_max_wait_s: float = 0.5
    retry_backoff_initial_s: float = 0.5
    retry_backoff_max_s: float = 30.0

    milvus_uri: str = "./data/milvus.db"
    milvus_token: str | None = None
    milvus_collection_prefix: str = "catalog"
    milvus_index_type: str = "HNSW"
    milvus_search_ef: int = 128

    model_ref: str = EmbedderConfig.model_ref  # the shipped unified student
    model_image_size: int = 64
    device: str = "cpu"
    torch_threads: int | None = None

    knn_k: int = 20
    similar_k: int = 10
    trusted_label_sources: list[str] = ["confirmed"]

    max_image_bytes: int = 10_000_000
    max_image_pixels: int = 40_000_000
    allowed_image_formats: list[str] = ["JPEG", "PNG", "WEBP"]
    fetch_timeout_s: float = 5.0
    fetch_attempts: int = 2
    allow_file_urls: bool = False
    file_url_root: Path | None = None
    private_host_allowlist: list[str] = []

    quality_mode: Literal["auto", "on", "off"] = Field(
        "auto", description="auto: score quality when the shipped models exist; on: require them; off: never"
    )
    quality_models: dict[Literal["background", "position", "visual"], str] = Field(
        default_factory=dict, description="registry ref per quality role, e.g. a rollback; absent roles: shipped"
    )
    quality_weights: dict[str, float] = {"background": 0.3, "position": 0.35, "visual": 0.35}
    quality_visual_weights: dict[str, float] = {"aesthetic": 0.5, "noise": 0.5}
    quality_background_table: dict[str, dict[str, float]] | None = Field(
        None, description="background score per (scene row, background class); null: the built-in table"
    )
    quality_position: dict[str, float] = Field(
        default_factory=dict, description="overrides of the position-score formula constants"
    )

    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    log_level: str = "INFO"
    log_json: bool = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFromEnvPath(settings_cls, init_settings, env_settings))

    def intake_config(self) -> IntakeConfig:
        return IntakeConfig(
            max_bytes=self.max_image_bytes,
            max_pixels=self.max_image_pixels,
            allowed_formats=frozenset(f.upper() for f in self.allowed_image_formats),
            fetch_timeout_s=self.fetch_timeout_s,
            fetch_attempts=self.fetch_attempts,
            allow_file_urls=self.allow_file_urls,
            file_root=self.file_url_root,
            private_host_allowlist=frozenset(self.private_host_allowlist),
        )

    def embedder_config(self) -> EmbedderConfig:
        return EmbedderConfig(
            model_ref=self.model_ref,
            image_size=self.model_image_size,
            device=self.device,
            torch_threads=self.torch_threads,
        )

    def index_config(self) -> VectorIndexConfig:
        return VectorIndexConfig(
            uri=self.milvus_uri,
            collection_prefix=self.milvus_collection_prefix,
            token=self.milvus_token,
            index_type=self.milvus_index_type,
            search_ef=self.milvus_search_ef,
        )

    def pipeline_config(self, upsert: bool = True) -> PipelineConfig:
        return PipelineConfig(
            knn_k=self.knn_k,
            similar_k=self.similar_k,
            trusted_label_sources=frozenset(self.trusted_label_sources),
            upsert=upsert,
        )


class _TomlFromEnvPath(PydanticBaseSettingsSource):
    """Reads the TOML file named by ``config_file`` (from init or env), lowest priority."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        init_source: PydanticBaseSettingsSource,
        env_source: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._init_source = init_source
        self._env_source = env_source

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = self._init_source().get("config_file") or self._env_source().get("config_file")
        if not path:
            return {}
        if not Path(path).is_file():
            raise FileNotFoundError(f"settings file {path} does not exist")
        return TomlConfigSettingsSource(self.settings_cls, toml_file=Path(path))()
