"""The stored evaluation of one registered embedding model: the file the console reads.

``catalog models evaluate`` writes ``<registry>/<name>/<version>/evaluation.json`` once per
version and protocol; the console and the comparison code only read it. It is a cache, not
part of the immutable artifact: the manifest does not list it, and it is recomputed when the
weights' sha256 or the protocol differs from the one it records.

Per-query correctness is kept (one bit per query, packed, base64) so the paired difference
between ANY two evaluated models on the same queries can be computed later, not only against
the model that was active when each was evaluated. Pure numpy and JSON: the serving side may
import this module; it pulls in no training, dataset or benchmark code.

Layout (``schema`` 1)::

    {
      "schema": 1, "model_ref": "student@17", "weights_sha256": "...",
      "protocol": {"gallery_size": 10000, "queries": 2000, "k": 20, "seed": 0,
                   "queries_from": "test", "styles": ["plain", "seller"], "examples": 12, "top_k": 8},
      "protocol_key": "<16 hex>",            # hash of protocol: equal keys = same queries
      "computed_at": "...", "command": "catalog models evaluate ...",
      "device": "cpu", "threads": 2,
      "params": 3900000, "bytes": 7571631, "images_per_s": 410.5,
      "categories": ["clothing", "shoes", "bags"],
      "styles": {
        "plain": {"fine_acc": .., "coarse_acc": .., "map_at_r": ..,
                  "fine_acc_by_category": {"clothing": .., ...},
                  "coarse_acc_by_category": {"clothing": .., ...},
                  "fine_correct": "<base64 of np.packbits>", "n_queries": 2000},
        "seller": {...}
      },
      "vs_active": {"ref": "student@17", "plain": [diff, low, high], "seller": [diff, low, high]} | null,
      "examples": [
        {"style": "seller", "query": {"split": "test", "item": 123, "fine": "sneaker",
                                      "category": "shoes", "image": "evaluations/images/<key>.png"},
         "neighbours": [{"split": "train", "item": 456, "fine": "sandal", "category": "shoes",
                         "similarity": 0.93, "image": "evaluations/images/<key>.png"}, ...]}
      ]
    }

``image`` paths are relative to the registry root (``<registry>/evaluations/images/...``), shared
by every model evaluated with the same protocol, so the same query image is stored once.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

EVALUATION_FILE = "evaluation.json"
EVALUATION_SCHEMA = 1
IMAGES_DIR = Path("evaluations") / "images"  # under the registry root


def protocol_key(protocol: dict[str, Any]) -> str:
    """Equal keys mean the same queries, gallery and k: only such evaluations may be paired."""
    return hashlib.sha256(json.dumps(protocol, sort_keys=True).encode()).hexdigest()[:16]


def pack_correct(correct: np.ndarray) -> str:
    return base64.b64encode(np.packbits(np.asarray(correct, dtype=bool)).tobytes()).decode("ascii")


def unpack_correct(packed: str, n_queries: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(base64.b64decode(packed), dtype=np.uint8))
    if len(bits) < n_queries:
        raise ValueError(f"stored correctness has {len(bits)} bits, expected {n_queries}")
    return bits[:n_queries].astype(bool)


def evaluation_path(registry_root: Path, name: str, version: str) -> Path:
    return Path(registry_root) / name / version / EVALUATION_FILE


def read_evaluation(registry_root: Path, name: str, version: str) -> dict[str, Any] | None:
    """The stored evaluation, or None when there is none (or it is of another schema)."""
    path = evaluation_path(registry_root, name, version)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return data if data.get("schema") == EVALUATION_SCHEMA else None


def write_evaluation(registry_root: Path, name: str, version: str, evaluation: dict[str, Any]) -> Path:
    """Atomic write: a reader never sees half a file."""
    path = evaluation_path(registry_root, name, version)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(evaluation, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def is_current(evaluation: dict[str, Any] | None, weights_sha256: str, protocol: dict[str, Any]) -> bool:
    """Whether a stored evaluation still describes these weights under this protocol."""
    return (
        evaluation is not None
        and evaluation.get("weights_sha256") == weights_sha256
        and evaluation.get("protocol_key") == protocol_key(protocol)
    )


def paired_interval(a: np.ndarray, b: np.ndarray, draws: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """(mean of b - a, 2.5 %, 97.5 % bootstrap quantiles), resampling queries with their pairs.

    Both models answer the same queries, so the per-query difference is resampled with its pairs;
    the interval covers the noise of the query draw, not the noise between training runs.
    """
    diff = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // max(1, len(diff)))  # bounded memory: a few MB of indices at a time
    means = np.concatenate([
        diff[rng.integers(0, len(diff), (min(chunk, draws - start), len(diff)))].mean(axis=1)
        for start in range(0, draws, chunk)
    ])  # fmt: skip
    return float(diff.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def paired_difference(base: dict[str, Any], other: dict[str, Any], style: str) -> tuple[float, float, float]:
    """Fine-accuracy difference other - base with its 95 % interval, on the queries both answered."""
    if base.get("protocol_key") != other.get("protocol_key"):
        raise ValueError("the two evaluations used different queries: evaluate both with the same protocol")
    a, b = base["styles"][style], other["styles"][style]
    return paired_interval(unpack_correct(a["fine_correct"], a["n_queries"]),
                           unpack_correct(b["fine_correct"], b["n_queries"]))  # fmt: skip
