"""The Compare page's view: metrics side by side, paired differences with their 95 % intervals, examples.

Why paired differences: two models answered the same queries (equal ``protocol_key``), so the
per-query difference of correctness, resampled in pairs, says whether a gap is larger than the
noise of the query draw. A verdict sentence states it in words, so a person sees WHY one model is
better, not only that one number is larger. Every figure is read from the stored evaluations; the
intervals are computed here from their per-query correctness (``model_store.evaluations``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_store.evaluations import paired_difference
from model_store.registry import Manifest
from streams.console.catalog import Lineage, lineage

STYLE_NAMES = {"plain": "catalog shots", "seller": "seller photos"}


@dataclass(frozen=True)
class Column:
    ref: str
    kind: str
    status: str
    lineage: Lineage
    evaluation: dict[str, Any] | None
    evaluate_command: str
    report_url: str | None  # the training figure, when there is no history to draw
    weights_bytes: int


@dataclass(frozen=True)
class Cell:
    text: str
    delta: str | None = None  # vs the first column
    sign: int = 0  # +1 better, -1 worse, 0 same/unknown (for the class; the text says it too)


@dataclass(frozen=True)
class MetricRow:
    group: str
    label: str
    cells: list[Cell]


@dataclass(frozen=True)
class Paired:
    """other - base fine accuracy on the same queries, in points, with its bootstrap 95 % interval."""

    diff: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        if self.low > 0:
            return "better: the whole interval is above zero"
        if self.high < 0:
            return "worse: the whole interval is below zero"
        return "no clear difference: the interval includes zero"

    @property
    def sign(self) -> int:
        return 1 if self.low > 0 else -1 if self.high < 0 else 0


@dataclass(frozen=True)
class PairedRow:
    style: str
    cells: list[Paired | str | None]  # None for the base column; a string says why there is no interval


@dataclass(frozen=True)
class Neighbour:
    image: str
    fine: str
    category: str
    similarity: float
    wrong: bool  # another category than the query's
    other_class: bool  # same category, another fine class (a fine-accuracy miss, not a category one)


@dataclass(frozen=True)
class ExampleRow:
    style: str
    query_image: str
    fine: str
    category: str
    per_model: list[list[Neighbour] | None]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _delta(value: float | None, base: float | None, higher_is_better: bool = True) -> tuple[str | None, int]:
    if value is None or base is None:
        return None, 0
    d = 100 * (value - base)
    sign = 0 if abs(d) < 0.05 else (1 if (d > 0) == higher_is_better else -1)
    return f"{d:+.1f} pts", sign


def _style(evaluation: dict[str, Any] | None, style: str) -> dict[str, Any]:
    return ((evaluation or {}).get("styles") or {}).get(style) or {}


def metric_rows(columns: list[Column]) -> list[MetricRow]:
    """Accuracy per style (overall, coarse, mAP@R, each category's fine accuracy), then size and speed."""
    base = columns[0].evaluation
    categories: list[str] = []
    for c in columns:
        categories.extend(x for x in (c.evaluation or {}).get("categories", []) if x not in categories)
    rows = []
    for style in ("seller", "plain"):
        group = f"{STYLE_NAMES[style]} ({style})"
        metrics = [("fine_acc", "fine accuracy (KNN vote, 10 classes)"), ("coarse_acc", "category accuracy"),
                   ("map_at_r", "mAP@R (retrieval)")]  # fmt: skip
        for key, label in metrics:
            rows.append(_row(group, label, columns, lambda e, k=key, s=style: _style(e, s).get(k), base))
        for cat in categories:
            by_cat = lambda e, c=cat, s=style: _style(e, s).get("fine_acc_by_category", {}).get(c)  # noqa: E731
            rows.append(_row(group, f"fine accuracy: {cat}", columns, by_cat, base))
    size_cells = [Cell(f"{c.weights_bytes / 1e6:.2f} MB") for c in columns]
    rows.append(MetricRow("cost", "weights file", size_cells))
    params = [(c.evaluation or {}).get("params") for c in columns]
    rows.append(MetricRow("cost", "parameters", [Cell(f"{p / 1e6:.2f} M" if p else "-") for p in params]))
    speed = [(c.evaluation or {}).get("images_per_s") for c in columns]
    rows.append(MetricRow("cost", "embedding speed (images/s, CPU)", [Cell(f"{v:.0f}" if v else "-") for v in speed]))
    return rows


def _row(group: str, label: str, columns: list[Column], get: Any, base: dict[str, Any] | None) -> MetricRow:
    base_value = get(base) if base else None
    cells = []
    for i, c in enumerate(columns):
        value = get(c.evaluation) if c.evaluation else None
        delta, sign = _delta(value, base_value) if i else (None, 0)
        cells.append(Cell(_pct(value), delta, sign))
    return MetricRow(group, label, cells)


def paired_rows(columns: list[Column], paired: Any = paired_difference) -> list[PairedRow]:
    """Fine-accuracy difference of every column against the first, per style, with its 95 % interval."""
    base = columns[0].evaluation
    rows = []
    for style in ("seller", "plain"):
        cells: list[Paired | str | None] = [None]
        for c in columns[1:]:
            if base is None or c.evaluation is None:
                cells.append("not evaluated")
            elif base.get("protocol_key") != c.evaluation.get("protocol_key"):
                cells.append("evaluated on other queries: evaluate both with the same protocol")
            elif style not in base.get("styles", {}) or style not in c.evaluation.get("styles", {}):
                cells.append("no such queries")
            else:
                diff, low, high = paired(base, c.evaluation, style)
                cells.append(Paired(100 * diff, 100 * low, 100 * high))
        rows.append(PairedRow(style, cells))
    return rows


def example_rows(columns: list[Column], image_url: Any) -> list[ExampleRow]:
    """The base model's example queries, each with every model's stored neighbours for the same query."""
    by_model = []
    for c in columns:
        found = {}
        for ex in (c.evaluation or {}).get("examples", []):
            q = ex["query"]
            found[(ex["style"], q["split"], q["item"])] = ex
        by_model.append(found)
    keys = list(next((m for m in by_model if m), {}))
    rows = []
    for key in keys:
        query = next(m[key]["query"] for m in by_model if key in m)
        per_model: list[list[Neighbour] | None] = []
        for found in by_model:
            ex = found.get(key)
            per_model.append(None if ex is None else [
                Neighbour(image_url(n["image"]), n["fine"], n["category"], n["similarity"],
                          n["category"] != query["category"],
                          n["category"] == query["category"] and n["fine"] != query["fine"])
                for n in ex["neighbours"]])  # fmt: skip
        rows.append(ExampleRow(key[0], image_url(query["image"]), query["fine"], query["category"], per_model))
    return rows


def column(manifest: Manifest, status: str, evaluation: dict[str, Any] | None, command: str, version_dir: Path,
           has_history: bool) -> Column:  # fmt: skip
    report = version_dir / "report.png"
    report_url = f"/report/{manifest.name}/{manifest.version}" if report.is_file() and not has_history else None
    weights = version_dir / "weights.pt"
    return Column(manifest.ref, manifest.kind or "model", status, lineage(manifest), evaluation, command, report_url,
                  weights.stat().st_size if weights.is_file() else 0)  # fmt: skip
