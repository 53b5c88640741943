"""KNN accuracy of one embedding net on validation queries (held-out train items), both styles.

The same items and renderings as ``benchmark --queries-from val --queries 6000``: 6,000 held-out
queries against 10,000 gallery items of the training pool.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from model_store.distill.benchmark import _sample, _score
from model_store.distill.config import RecipeConfig, held_out_split
from model_store.distill.data import ImageSource


class ValidationKnn:
    def __init__(self, cfg: RecipeConfig, gallery: int = 10_000, queries: int = 6_000, seed: int = 0) -> None:
        self.spec, self.source = cfg.preprocess, ImageSource("train", cfg.preprocess)
        pool, held = held_out_split(cfg)
        g_idx, q_idx = _sample(pool, gallery, seed), _sample(held, queries, seed + 1)
        self.sets = {s: (self.source.style(s, g_idx, 1000 + seed), self.source.style(s, q_idx, 2000 + seed))
                     for s in ("plain", "seller")}  # fmt: skip
        self.g_fine = torch.from_numpy(self.source.labels(g_idx).astype(np.int64))
        self.q_fine = torch.from_numpy(self.source.labels(q_idx).astype(np.int64))
        self.to_cat = torch.tensor(cfg.taxonomy.fine_to_category_index())

    def _embed(self, net: nn.Module, images: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            chunks = [net(self.spec.normalise_uint8(images[i : i + 256])).float() for i in range(0, len(images), 256)]
        return torch.cat(chunks)

    def report(self, net: nn.Module, tag: str) -> None:
        net.eval()
        for style, (gallery, queries) in self.sets.items():
            r = _score(self._embed(net, queries), self._embed(net, gallery), self.q_fine, self.g_fine, self.to_cat,
                       None, 20, len(self.to_cat))  # fmt: skip
            print(f"{tag} {style}: fine acc {r['fine_acc']:.4f}, mAP@R {r['map_at_r']:.4f}", flush=True)
