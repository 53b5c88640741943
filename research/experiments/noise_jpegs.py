"""A folder of large uploads for memory tests: ``--distinct`` noise JPEGs near ``--kb`` each, linked ``--count`` times.

``PYTHONPATH=. python research/experiments/noise_jpegs.py /tmp/big --kb 700 --distinct 100 --count 2000``:
noise does not compress, so each file stays near the size asked for; the links give ``catalog produce
--folder`` as many distinct product ids as ``--count`` without writing that many files.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("folder", type=Path)
    p.add_argument("--kb", type=int, default=700)
    p.add_argument("--distinct", type=int, default=100)
    p.add_argument("--count", type=int, default=2000)
    args = p.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    side = int((args.kb * 1024 / 0.76) ** 0.5)  # noise at quality 85: about 0.76 bytes per RGB pixel
    sources = []
    for i in range(args.distinct):
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(out, "JPEG", quality=85)
        path = args.folder / f"source-{i:04d}.jpg.bin"  # not an image suffix: only the links are published
        path.write_bytes(out.getvalue())
        sources.append(path)
    for i in range(args.count):
        (args.folder / f"upload-{i:05d}.jpg").symlink_to(sources[i % len(sources)].name)
    sizes = [s.stat().st_size for s in sources]
    print(f"{args.count} uploads in {args.folder}, {min(sizes) // 1024}-{max(sizes) // 1024} KB each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
