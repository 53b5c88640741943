"""Training curves as inline-SVG polylines: one row per logged quantity, one cell per model, one shared y-scale.

Why a shared scale per row: the point of the Compare page is to see which candidate's validation
curve ends higher, and separate scales would draw every curve the same height. The history file is
the training loop's ``{"train": [{"step": .., "loss": ..}, ...], "eval": [...]}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

WIDTH, HEIGHT, PAD = 240.0, 90.0, 6.0


@dataclass(frozen=True)
class Curve:
    """One model's series of one quantity, already in SVG coordinates."""

    points: str  # "x,y x,y ..." for <polyline points=...>
    end: tuple[str, str]  # the last point (drawn as a dot, so a one-point series shows too)
    last: float
    steps: int  # last step logged


@dataclass(frozen=True)
class CurveRow:
    phase: str  # "train" or "eval"
    key: str
    y_min: float
    y_max: float
    cells: list[Curve | None]  # aligned with the compared models; None: the model did not log it


def read_history(path: Path) -> dict[str, list[dict[str, float]]] | None:
    """The history file, or None when it is missing or not in the training loop's shape."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    out: dict[str, list[dict[str, float]]] = {}
    for phase in ("train", "eval"):
        rows = data.get(phase, [])
        if isinstance(rows, list):
            out[phase] = [r for r in rows if isinstance(r, dict) and _finite(r.get("step"))]
    return out if any(out.values()) else None


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _series(rows: list[dict[str, float]], key: str) -> list[tuple[float, float]]:
    return [(float(r["step"]), float(r[key])) for r in rows if _finite(r.get(key))]


def curve_rows(histories: list[dict[str, list[dict[str, float]]] | None]) -> list[CurveRow]:
    """Rows for every quantity any model logged; x spans each model's own steps, y is shared per row."""
    out = []
    for phase in ("eval", "train"):  # validation first: it is what a person compares
        keys: list[str] = []
        for history in histories:
            for row in (history or {}).get(phase, []):
                keys.extend(k for k in row if k != "step" and k not in keys and _finite(row[k]))
        for key in keys:
            series = [_series((h or {}).get(phase, []), key) for h in histories]
            values = [v for s in series for _, v in s]
            if not values:
                continue
            y_min, y_max = min(values), max(values)
            out.append(CurveRow(phase, key, y_min, y_max, [_curve(s, y_min, y_max) if s else None for s in series]))
    return out


def _curve(series: list[tuple[float, float]], y_min: float, y_max: float) -> Curve:
    x_min, x_max = series[0][0], series[-1][0]
    x_span, y_span = (x_max - x_min) or 1.0, (y_max - y_min) or 1.0

    def at(x: float, y: float) -> str:
        sx = PAD + (x - x_min) / x_span * (WIDTH - 2 * PAD)
        sy = HEIGHT - PAD - (y - y_min) / y_span * (HEIGHT - 2 * PAD)
        return f"{sx:.1f},{sy:.1f}"

    points = [at(x, y) for x, y in series]
    end_x, end_y = points[-1].split(",")
    return Curve(" ".join(points), (end_x, end_y), series[-1][1], int(x_max))
