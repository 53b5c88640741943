"""``catalog gallery load | collections | drop``: the trusted gallery and the collections of each model."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from streams.settings import Settings


def add_parsers(gallery: Any) -> None:
    """``collections`` and ``drop`` under ``catalog gallery`` (``load`` keeps its parser in the CLI)."""
    co = gallery.add_parser("collections", help="gallery collections: rows, model, alias target, active")
    co.set_defaults(fn=lambda args: collections(args, _settings(args)))
    dr = gallery.add_parser("drop", help="drop one old gallery collection (never the alias target or active model's)")
    dr.add_argument("--collection", required=True)
    dr.add_argument("--yes", action="store_true", help="really drop it (without: say what would be dropped)")
    dr.set_defaults(fn=lambda args: drop(args, _settings(args)))


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(config_file=args.config) if args.config else Settings()


def _fail(code: str, message: str, exit_code: int = 2) -> int:
    print(json.dumps({"error": code, "message": message}), file=sys.stderr)
    return exit_code


def load(args: argparse.Namespace, s: Settings) -> int:
    """Publish the items to the gallery topic (unless --no-publish), then bulk-upsert them (the fast path)."""
    from aiokafka.errors import KafkaError

    from processors.embedding import TorchEmbedder
    from processors.gallery import folder_samples, load_gallery
    from processors.samples import fashion_mnist_samples
    from streams.pipeline_factory import build_index, build_label_store
    from streams.rollout.gallery_topic import publish_gallery

    embedder = TorchEmbedder.from_config(s.one_batch_at_a_time().embedder_config())
    if args.folder:
        samples = folder_samples(Path(args.folder), embedder.image_size)
        source = f"folder:{Path(args.folder).resolve().name}"[:128]
    else:
        samples = fashion_mnist_samples(args.split, args.limit, embedder.image_size, args.style, args.seed)
        source = f"fashion-mnist:{args.split}:{args.style}"
    published: dict[str, Any] = {"published": 0}
    if not args.no_publish:
        try:
            sent = asyncio.run(publish_gallery(s, samples, source))
        except ValueError as exc:
            return _fail("gallery_item_invalid", str(exc))
        except (KafkaError, OSError, TimeoutError) as exc:
            return _fail(
                "kafka_unavailable",
                f"gallery load publishes to {s.topic_gallery} at {s.kafka_bootstrap} so a model rollout can replay "
                f"it, and Kafka did not answer ({type(exc).__name__}: {exc}); start the broker, or pass --no-publish "
                "(the gallery then cannot be re-embedded by a rollout)",
            )
        published = {
            "published": sent.items,
            "topic": s.topic_gallery,
            "publish_seconds": round(sent.seconds, 2),
            "published_per_s": round(sent.rate, 1),
            "published_mb": round(sent.value_bytes / 1e6, 1),
        }
    index = build_index(s, embedder)
    report = load_gallery(samples, embedder, index, labels=build_label_store(s, index))
    out = {
        "collection": index.collection,
        "loaded": report.rows,
        "rows_total": index.count(),
        "seconds": round(report.seconds, 2),
        "images_per_s": round(report.rate, 1),
        **published,
    }
    print(json.dumps(out))
    index.close()
    return 0


def _active_collection(s: Settings) -> tuple[str | None, str]:
    """The active model's collection and where that came from; (None, why) when Kafka cannot say."""
    from aiokafka.errors import KafkaError

    from streams.activation import ActivationRefused, read_latest_activation
    from streams.rollout.collections import ref_collection

    try:
        record = asyncio.run(read_latest_activation(s, timeout_s=min(10.0, s.startup_timeout_s)))
    except (KafkaError, OSError, TimeoutError, ActivationRefused) as exc:
        return None, f"the models topic could not be read ({type(exc).__name__}: {exc})"
    if record is None:
        return ref_collection(s.milvus_collection_prefix, s.model_ref), "CATALOG_MODEL_REF (no activation yet)"
    return record.event.collection, f"activation {record.event.model_ref} at offset {record.offset}"


def _client(s: Settings) -> Any:
    from pymilvus import MilvusClient

    token = s.milvus_token.get_secret_value() if s.milvus_token else ""
    return MilvusClient(uri=s.milvus_uri, token=token)


def collections(args: argparse.Namespace, s: Settings) -> int:
    from model_store.embedding_models import available_models
    from streams.rollout.collections import list_gallery_collections

    active, why = _active_collection(s)
    try:
        client = _client(s)
    except Exception as exc:  # a locked Lite file, an unreachable server: one clear line
        return _fail("milvus_unavailable", f"{s.milvus_uri}: {type(exc).__name__}: {exc}")
    try:
        infos = list_gallery_collections(client, s.milvus_collection_prefix, available_models(), active)
    finally:
        client.close()
    print(json.dumps({
        "active_collection": active,
        "active_from": why,
        "collections": [
            {"name": i.name, "rows": i.rows, "model": i.model_ref, "alias_target": i.alias_target, "active": i.active}
            for i in infos
        ],
    }, indent=2))  # fmt: skip
    return 0


def drop(args: argparse.Namespace, s: Settings) -> int:
    from streams.rollout.collections import alias_target, drop_collection, drop_refusal, protected_collections

    active, why = _active_collection(s)
    if active is None:
        return _fail("active_model_unknown", f"refusing to drop anything while the active model is unknown: {why}")
    try:
        client = _client(s)
    except Exception as exc:
        return _fail("milvus_unavailable", f"{s.milvus_uri}: {type(exc).__name__}: {exc}")
    try:
        prefix = s.milvus_collection_prefix
        protected = protected_collections(prefix, alias_target(client, prefix), active)
        refusal = drop_refusal(args.collection, set(client.list_collections()), prefix, protected)
        if refusal is not None:
            return _fail("drop_refused", refusal)
        if not args.yes:
            return _fail("confirmation_required", f"would drop {args.collection!r}; run again with --yes", 1)
        drop_collection(client, args.collection, "catalog gallery drop --yes")
    finally:
        client.close()
    print(json.dumps({"dropped": args.collection, "active_collection": active, "active_from": why}))
    return 0
