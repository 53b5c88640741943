"""``catalog bench photos``: its libjpeg floor is measured on the very photos, at the scale intake picks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from infra.bench.photos import _child, phone_photo
from streams.commands.bench_stream import photo_lines

pytestmark = pytest.mark.integration
REPO = str(Path(__file__).resolve().parents[2])


def test_the_decode_floor_decodes_each_photo_shrunk_on_load(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        (photos / f"photo-{i}.jpg").write_bytes(phone_photo(i, 2400, 1600))
    warm = tmp_path / "warm.jpg"
    Image.new("RGB", (64, 64)).save(warm, "JPEG")

    floor = _child("floor", photos, warm, 3, 1, tmp_path, REPO)

    assert floor["mode"] == "floor" and floor["photos"] == 3
    width, height = floor["decoded_size"]
    assert width < 2400 and height < 1600 and width / height == pytest.approx(1.5, rel=0.02)  # draft, aspect kept
    assert floor["serial_ms_per_photo"] > 0 and floor["batch_ms_on_all_cores"] > 0
    assert floor["threads"] == os.cpu_count()


def test_the_report_names_the_floor_and_the_best_possible_speedup() -> None:
    mode = {"intake_ms": 700.0, "batch_ms": 900.0, "peak_rss_mib": 950.0}
    photos = {
        "count": 33,
        "size": "6000x4000",
        "modes": {"full": {**mode, "intake_ms": 2400.0}, "shrink": mode},
        "speedup": {"intake": 3.43},
        "rss_ratio": 0.2,
        "decode_floor": {
            "serial_ms_per_photo": 38.5,
            "batch_ms_on_all_cores": 640.0,
            "threads": 2,
            "intake_over_floor": 1.09,
            "best_possible_intake_speedup": 3.75,
        },
    }
    line = photo_lines(photos)[-1]
    assert "38.5 ms a photo" in line and "640 ms for the batch on 2 cores" in line and "3.8x" in line
