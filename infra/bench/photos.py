"""The phone-photo case: a batch of 6000x4000 JPEGs through the worker's pipeline, full decode vs shrink on load.

Why generated photos: none ship with the repository. Each is a smooth random texture over a
colour gradient with a fine grain (4x4-pixel noise), saved as a quality-90 JPEG: about 5 MB, the
size a phone writes for 24 megapixels. Each mode runs in a fresh process (``photos_child``), so
each peak RSS is its own; the figures are the pipeline's own ``timings`` of the batch.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from streams.settings import Settings

WIDTH, HEIGHT = 6000, 4000
CHILD = Path(__file__).with_name("photos_child.py")


def phone_photo(seed: int, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """A quality-90 JPEG of photo-like content (texture + gradient + grain), about 5 MB at 6000x4000."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 40, width // 40, 3), dtype=np.uint8)
    texture = Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    img = Image.blend(texture, gradient, 0.5)
    grain = rng.integers(68, 189, (height // 4, width // 4), dtype=np.uint8)
    img = Image.blend(img, Image.fromarray(grain).resize((width, height), Image.Resampling.NEAREST).convert("RGB"), 0.2)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _child(mode: str, photos: Path, warm: Path, count: int, threads: int | None, work: Path, pythonpath: str) -> dict:
    cmd = [sys.executable, str(CHILD), "--mode", mode, "--dir", str(photos), "--warm", str(warm),
           "--count", str(count), "--workdir", str(work)]  # fmt: skip
    if threads:
        cmd += ["--threads", str(threads)]
    env = {**os.environ, "PYTHONPATH": pythonpath, "CATALOG_LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=900, check=False, start_new_session=True
    )  # a session of its own, as the worker runs (CPU is shared per session where autogroup is on)
    if done.returncode != 0:
        raise RuntimeError(f"photo bench ({mode}) failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_photo_bench(
    settings: Settings,
    count: int = 33,
    progress: Callable[[str], None] = print,
    baseline_checkout: Path | None = None,
) -> dict[str, Any]:
    """Both modes (and, given another checkout, its pipeline as built) on the same generated photos."""
    repo = str(Path(__file__).resolve().parents[2])
    with tempfile.TemporaryDirectory(prefix="bench-photos-") as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        progress(f"generating {count} {WIDTH}x{HEIGHT} JPEGs")
        sizes = []
        for i in range(count):
            data = phone_photo(i)
            (photos / f"photo-{i:03d}.jpg").write_bytes(data)
            sizes.append(len(data))
        warm = Path(tmp) / "warm.jpg"
        Image.new("RGB", (128, 128), (120, 130, 140)).save(warm, "JPEG")
        runs = [("full", repo), ("shrink", repo)]
        if baseline_checkout is not None:
            runs.append(("as-built", str(baseline_checkout.resolve())))
        modes: dict[str, Any] = {}
        for mode, path in runs:
            work = Path(tmp) / f"work-{mode}"
            work.mkdir()
            progress(f"photos: measuring {mode} in a fresh process")
            name = "baseline_checkout" if mode == "as-built" else mode
            modes[name] = _child(mode, photos, warm, count, settings.torch_threads, work, path)
        progress("photos: measuring libjpeg's own decode at that scale (the floor) in a fresh process")
        floor = _child("floor", photos, warm, count, settings.torch_threads, Path(tmp), repo)
    full, shrink = modes["full"], modes["shrink"]
    before = modes.get("baseline_checkout", full)  # the older checkout's own pipeline, where one was given
    return {
        "bench": "photos",
        "count": count,
        "size": f"{WIDTH}x{HEIGHT}",
        "jpeg_quality": 90,
        "mean_file_mb": round(sum(sizes) / len(sizes) / 1e6, 2),
        "what": "one batch through the worker's pipeline (build_pipeline, Milvus Lite, file:// URLs) in a fresh "
        "process per mode, after a warm-up batch; peak RSS is that process's VmHWM (models included)",
        "modes": modes,
        "speedup": {
            "intake": round(full["intake_ms"] / shrink["intake_ms"], 2),
            "batch": round(full["batch_ms"] / shrink["batch_ms"], 2),
        },
        "rss_ratio": round(shrink["peak_rss_bytes"] / full["peak_rss_bytes"], 3),
        "decode_floor": {
            **floor,
            "what": "libjpeg's decode alone at the scale intake picks, no pipeline: the least any Pillow-based "
            "intake of this batch can take on this machine",
            "intake_over_floor": round(shrink["intake_ms"] / floor["batch_ms_on_all_cores"], 2),
            "best_possible_intake_speedup": round(before["intake_ms"] / floor["batch_ms_on_all_cores"], 2),
        },
        "targets": {
            "before": "baseline_checkout" if "baseline_checkout" in modes else "full",
            "intake_speedup": round(before["intake_ms"] / shrink["intake_ms"], 2),
            "intake_at_least_5x_faster": before["intake_ms"] >= 5 * shrink["intake_ms"],
            "peak_rss_under_1_5_gb": shrink["peak_rss_bytes"] < 1.5e9,
        },
    }
