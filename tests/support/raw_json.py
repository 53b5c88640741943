"""JSON text with raw tokens spliced in, for values ``json.dumps`` cannot write (huge ints, NaN, bad escapes)."""

from __future__ import annotations

import json
from typing import Any

RAW = "\x00raw:"  # a string value standing for a raw JSON token spliced into the text


def to_text(value: Any, ascii_only: bool = True) -> str:
    """JSON text of ``value`` with every ``RAW`` string replaced by its raw token."""
    raws: list[str] = []

    def swap(v: Any) -> Any:
        if isinstance(v, str) and v.startswith(RAW):
            raws.append(v[len(RAW) :])
            return f"__raw_{len(raws) - 1}__"
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    text = json.dumps(swap(value), ensure_ascii=ascii_only)
    for i, token in enumerate(raws):
        text = text.replace(f'"__raw_{i}__"', token)
    return text
