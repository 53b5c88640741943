"""The one settings object: read from ``CATALOG_*`` environment variables and an optional TOML file.

Built once at the entry point and passed down; stage configs are derived from it,
so no module below reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from model_store.devices import CPU_FORWARD_BATCH
from processors.embedding import EmbedderConfig
from processors.intake import IntakeConfig
from processors.pipeline import PipelineConfig
from processors.vector_index import VectorIndexConfig

# Float-vector index types Milvus knows (Lite accepts any name and ignores it, so the check is here).
MILVUS_INDEX_TYPES = frozenset(
    {"FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "IVF_RABITQ", "HNSW", "HNSW_SQ", "HNSW_PQ", "HNSW_PRQ", "SCANN"}
    | {"DISKANN", "AUTOINDEX", "GPU_CAGRA", "GPU_IVF_FLAT", "GPU_IVF_PQ", "GPU_BRUTE_FORCE"}
)


def usable_cores() -> int:
    """The cores this process may run on (its affinity), not every core of the host."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class Settings(BaseSettings):
    """Every knob of the worker and the CLI; see docs/settings.md."""

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
    topic_models: str = Field(
        "catalog.models.v1", description="compacted, one partition: the latest ModelActivated under key 'active'"
    )
    topic_gallery: str = Field(
        "catalog.gallery.v1", description="compacted, keyed by product_id: the trusted gallery as GalleryItem events"
    )
    topic_partitions: int = 4
    topic_replication_factor: int = Field(1, ge=1, description="replicas of the topics the worker creates")
    topic_min_insync_replicas: int | None = Field(
        None, ge=1, description="min.insync.replicas of the topics the worker creates; None: the broker's default"
    )

    # Consumer group timing, chosen for fast recovery after a crash (docs/operations.md, "Recovery after a crash").
    kafka_session_timeout_s: float = Field(6.0, description="a dead member's partitions move after this")
    kafka_heartbeat_interval_s: float = Field(1.0, description="also how soon a member notices a rebalance")
    kafka_rebalance_timeout_s: float = Field(20.0, description="longest wait for members to rejoin a rebalance")
    kafka_max_poll_interval_s: float = Field(1000.0, description="a consumer that does not poll this long leaves")
    kafka_request_timeout_s: float = Field(90.0, description="Kafka request timeout (must exceed the session timeout)")
    worker_instance_id: str | None = Field(
        None, description="static group membership (group.instance.id): unique per worker, stable across restarts"
    )
    # Connection security: every Kafka client the project builds gets these (streams.kafka_clients).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle (PEM); None: the system's CAs")
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate (PEM) for mutual TLS")
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    startup_timeout_s: float = Field(
        60.0, gt=0, description="start-up gives up (exit 2, one log line) if Kafka or Milvus is unusable by then"
    )
    health_check_interval_s: float = Field(
        5.0, gt=0, description="how often readiness pings Milvus and the lag gauge reads the group's commits"
    )
    log_repeat_window_s: float = Field(
        10.0, ge=0, description="a repeated library warning/error is logged once per window, with a count; 0: all"
    )
    batch_max_size: int = Field(
        256,
        ge=1,
        description="micro-batch size: what a batch pays once (a Milvus search, a Kafka request) is shared by "
        "this many events; the models take it in forward_batch_max pieces",
    )
    batch_max_wait_s: float = 0.5
    stream_buffer_max: int | None = Field(
        None,
        ge=1,
        description="events faust may hold ahead of the batches (its stream buffer); none: 4 batches, at least "
        "256. With 700 KB inline uploads, one batch (256) lowered the worker's peak from 2.4 to 1.9 GiB and "
        "its rate by about 12 %; with small uploads it changed neither",
    )
    pipeline_in_flight: int | None = Field(
        None,
        ge=1,
        le=8,
        description="image batches in flight at once: their decode, models, index and publish overlap while each "
        "stage stays in arrival order (streams.overlap); 1: strictly one batch after the other; none: one more "
        "than the inference lanes",
    )
    retry_backoff_initial_s: float = 0.5
    retry_backoff_max_s: float = 30.0
    dlq_max_copied_value_bytes: int = Field(
        256 * 1024,
        ge=0,
        le=600_000,
        description="a dead letter copies at most this much of the original value (plus its size and sha256), "
        "so it always fits the producer's 1,000,000-byte limit",
    )
    label_wait_s: float = Field(
        60.0, ge=0, description="how long a label waits for its image before it is dead-lettered (it stays stored)"
    )
    label_recheck_interval_s: float = Field(1.0, gt=0, description="how often waiting labels look for their image")
    rollout_batch_size: int = Field(64, ge=1, description="records per re-index batch (both topics together)")
    rollout_switch_lag: int = Field(
        256, ge=0, description="a rollout may switch partitions once the re-index lags by at most this many records"
    )
    rollout_keep_collections: int = Field(
        0, ge=0, description="gallery collections of earlier models kept after a switch; 0 keeps all (never drops)"
    )

    milvus_uri: str = "./data/milvus.db"
    milvus_token: SecretStr | None = None
    milvus_collection_prefix: str = "catalog"
    milvus_index_type: str = "HNSW"
    milvus_index_params: dict[str, int | float | str] = Field(
        default_factory=dict,
        description="build parameters over the index type's defaults (HNSW M/efConstruction, IVF nlist)",
    )
    milvus_search_ef: int = 128
    milvus_search_nprobe: int = 32
    milvus_search_consistency: Literal["Strong", "Bounded", "Session", "Eventually"] = Field(
        "Bounded", description="KNN searches only; reads that decide a write and counts are always Strong"
    )
    milvus_flush_every_rows: int | None = Field(
        None,
        ge=0,
        description="seal the gallery's growing segment after this many upserted rows (searches on Milvus Lite "
        "scan growing rows at a high fixed cost); None: 2048 on Milvus Lite (a file or served over http), 0 "
        "(Milvus decides) on a server",
    )

    milvus_lite_process: bool = Field(
        True,
        description="a worker serves a Milvus Lite file from a child process of its own (Lite is pure Python: "
        "embedded, its threads share the worker's GIL); False: in the worker's threads",
    )
    milvus_lite_row_cache: bool = Field(
        True,
        description="the worker's Lite child builds search hits from per-segment column caches and leaves out "
        "vectors a search did not ask for (streams/milvus_lite_rows.py; on the Lite versions it was checked "
        "against); False: Lite's own code",
    )

    model_ref: str = EmbedderConfig.model_ref  # the shipped unified student
    model_image_size: int = 64
    device: str = "cpu"
    torch_threads: int | None = None
    cpu_graphs: bool = Field(
        True,
        description="on a CPU, serve every model as a traced, frozen TorchScript graph: its operators run without "
        "taking Python's GIL between them (a model that fails the trace or its check is served eager)",
    )
    forward_batch_max: int | None = Field(
        None,
        ge=1,
        description="images in one forward pass of a model: a larger batch runs in pieces of this size; none: "
        f"{CPU_FORWARD_BATCH} on a CPU (whose caches favour small forwards while the stream's per-batch costs favour "
        "large batches), the whole batch on a GPU",
    )
    inference_lanes: int | None = Field(
        None,
        ge=1,
        le=16,
        description="batches in the models at once, each on a thread of its own; none: 2 on a CPU with 2 or more "
        "cores (small models use cores better side by side than split inside one forward), 1 on a GPU, with "
        "torch_threads set, or with pipeline_in_flight 1",
    )

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
    max_decoding_bytes: int = Field(
        256 * 1024 * 1024,
        gt=0,
        description="pixel memory the image decodes running at once may hold (estimated from each header); "
        "a decode that does not fit waits, one larger than this runs alone",
    )

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

    registry_dir: Path | None = Field(
        None,
        description="model registry every model is read from (worker, re-index, console, `catalog models "
        "activate`); None: model_store/artifacts",
    )
    activation_log: Path | None = Field(
        None, description="JSON-lines record of published activations; None: <registry>/activations.jsonl"
    )
    console_host: str = Field("127.0.0.1", description="the console's address; on loopback it refuses other clients")
    console_port: int = Field(8090, ge=0, le=65535)
    console_max_upload_bytes: int = Field(10_000_000, gt=0, description="largest image the Search page accepts")
    console_worker_metrics_urls: list[str] | None = Field(
        None, description="worker /metrics pages the console reads catalog_models_info from; None: this host's worker"
    )
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

    @field_validator("milvus_index_type")
    @classmethod
    def _known_index_type(cls, value: str) -> str:
        """An unknown type fails here: Milvus Lite would accept any name and silently build FLAT."""
        if value.upper() not in MILVUS_INDEX_TYPES:
            raise ValueError(f"unknown Milvus index type {value!r}; one of {', '.join(sorted(MILVUS_INDEX_TYPES))}")
        return value.upper()

    @model_validator(mode="after")
    def _lanes_fit_in_flight(self) -> Settings:
        if self.inference_lanes and self.pipeline_in_flight and self.inference_lanes > self.pipeline_in_flight:
            raise ValueError(
                f"inference_lanes ({self.inference_lanes}) > pipeline_in_flight ({self.pipeline_in_flight}): "
                "the lanes beyond the batches in flight would never be used"
            )
        return self

    @model_validator(mode="after")
    def _kafka_settings_agree(self) -> Settings:
        """Refuse combinations faust or the broker would refuse later, with a less clear message."""
        if not 0 < self.kafka_heartbeat_interval_s < self.kafka_session_timeout_s:
            raise ValueError("kafka_heartbeat_interval_s must be > 0 and below kafka_session_timeout_s")
        if self.kafka_session_timeout_s > self.kafka_request_timeout_s:
            raise ValueError("kafka_session_timeout_s must not exceed kafka_request_timeout_s")
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and (not self.kafka_sasl_username or self.kafka_sasl_password is None):
            raise ValueError("SASL needs kafka_sasl_username and kafka_sasl_password")
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ValueError("kafka_ssl_keyfile needs kafka_ssl_certfile")
        return self

    def intake_config(self, shrink_to: int | None = None) -> IntakeConfig:
        """``shrink_to``: the largest input side of the served models (images are shrunk on load to it)."""
        return IntakeConfig(
            max_bytes=self.max_image_bytes,
            max_pixels=self.max_image_pixels,
            allowed_formats=frozenset(f.upper() for f in self.allowed_image_formats),
            fetch_timeout_s=self.fetch_timeout_s,
            fetch_attempts=self.fetch_attempts,
            allow_file_urls=self.allow_file_urls,
            file_root=self.file_url_root,
            private_host_allowlist=frozenset(self.private_host_allowlist),
            shrink_to=shrink_to,
            max_decoding_bytes=self.max_decoding_bytes,
        )

    def lanes(self) -> int:
        """Batches in the models at once: as set, else 2 on a CPU with 2+ cores.

        One lane where more could not be used or were not asked for: a GPU, one batch in flight,
        or ``torch_threads`` set by hand (a count chosen for the one-lane worker of before).
        """
        if self.inference_lanes is not None:
            return self.inference_lanes
        if self.device != "cpu" or self.torch_threads or self.pipeline_in_flight == 1:
            return 1
        return 2 if usable_cores() >= 2 else 1

    def threads_per_lane(self) -> int | None:
        """Torch's intra-op threads: as set, or the cores shared out between the lanes (None: torch's default).

        Why share them out: two lanes each on torch's default (every core) would put twice as many
        busy threads as cores, and a forward split across threads is as slow as its slowest one.
        """
        if self.torch_threads:
            return self.torch_threads
        lanes = self.lanes()
        return max(1, usable_cores() // lanes) if lanes > 1 else None

    def forward_batch(self) -> int | None:
        """Images per forward pass: as set, else ``CPU_FORWARD_BATCH`` on a CPU; None: the whole batch at once."""
        if self.forward_batch_max is not None:
            return self.forward_batch_max
        return CPU_FORWARD_BATCH if self.device == "cpu" else None

    def stream_buffer(self) -> int:
        """Events faust buffers ahead of the batches: as set, else 4 batches (at least 256)."""
        return self.stream_buffer_max if self.stream_buffer_max is not None else max(4 * self.batch_max_size, 256)

    def in_flight(self) -> int:
        """Image batches in flight: as set, or one per lane plus one being decoded, searched or published."""
        return self.pipeline_in_flight if self.pipeline_in_flight is not None else min(8, self.lanes() + 1)

    def one_batch_at_a_time(self) -> Settings:
        """For callers that run one batch after another (offline enrich, gallery load, benches): one lane, all cores."""
        return self.model_copy(update={"inference_lanes": 1})

    def embedder_config(self) -> EmbedderConfig:
        return EmbedderConfig(
            model_ref=self.model_ref,
            image_size=self.model_image_size,
            device=self.device,
            max_forward_batch=self.forward_batch(),
            torch_threads=self.threads_per_lane(),
            registry_dir=self.registry_dir,
            graph=self.cpu_graphs,
        )

    def index_config(self) -> VectorIndexConfig:
        return VectorIndexConfig(
            uri=self.milvus_uri,
            collection_prefix=self.milvus_collection_prefix,
            token=self.milvus_token.get_secret_value() if self.milvus_token else None,
            index_type=self.milvus_index_type,
            index_params=tuple(sorted(self.milvus_index_params.items())),
            search_ef=self.milvus_search_ef,
            search_nprobe=self.milvus_search_nprobe,
            search_consistency=self.milvus_search_consistency,
            flush_every_rows=self.milvus_flush_every_rows,
        )

    def milvus_is_lite_file(self) -> bool:
        return "://" not in self.milvus_uri

    def pipeline_config(self, upsert: bool = True) -> PipelineConfig:
        return PipelineConfig(
            knn_k=self.knn_k,
            similar_k=self.similar_k,
            trusted_label_sources=frozenset(self.trusted_label_sources),
            upsert=upsert,
            inference_lanes=self.lanes(),
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
