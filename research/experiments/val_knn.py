"""KNN accuracy of one embedding net on validation queries (held-out train items), both styles.

The items, renderings and scoring of ``benchmark --queries-from val --queries 6000`` (6,000
held-out queries against 10,000 gallery items of the training pool), for a net held in memory.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model_store.distill.benchmark import draw_items, embed_batches, knn_scores
from model_store.distill.config import RecipeConfig
from model_store.distill.retrieval import knn_vote, similarities
from model_store.embedding_loading import load_embedding_net
from model_store.embedding_nets import EmbeddingNet
from model_store.registry import DEFAULT_ROOT, ModelRegistry


def parse_with_registry(p: argparse.ArgumentParser) -> tuple[argparse.Namespace, ModelRegistry]:
    """The options every probe shares (--registry, --threads): parse, apply the threads, open the registry."""
    p.add_argument("--registry", type=Path, default=DEFAULT_ROOT)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    return args, ModelRegistry(args.registry)


def load_for_validation(registry: ModelRegistry, ref: str) -> tuple[EmbeddingNet, RecipeConfig, ValidationKnn]:
    """A registered net, its recipe and the validation queries of that recipe."""
    net, manifest = load_embedding_net(registry, ref)
    cfg = RecipeConfig.from_dict(manifest.config)
    return net, cfg, ValidationKnn(cfg)


class ValidationKnn:
    def __init__(self, cfg: RecipeConfig, gallery: int = 10_000, queries: int = 6_000, seed: int = 0) -> None:
        self.spec = cfg.preprocess
        g_src, q_src, g_idx, q_idx = draw_items(cfg, self.spec, "val", gallery, queries, seed)
        self.sets = {s: (g_src.style(s, g_idx, 1000 + seed), q_src.style(s, q_idx, 2000 + seed))
                     for s in ("plain", "seller")}  # fmt: skip
        self.g_fine = torch.from_numpy(g_src.labels(g_idx).astype(np.int64))
        self.q_fine = torch.from_numpy(q_src.labels(q_idx).astype(np.int64))
        self.to_cat = torch.tensor(cfg.taxonomy.fine_to_category_index())

    def _embeddings(self, net: nn.Module, style: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(queries, gallery) embedded by ``net`` in eval mode."""
        net.eval()
        gallery, queries = self.sets[style]
        emb_g, _ = embed_batches(lambda x, s: net(x), gallery, self.spec, 256)
        emb_q, _ = embed_batches(lambda x, s: net(x), queries, self.spec, 256)
        return emb_q, emb_g

    def correct(self, net: nn.Module, style: str) -> torch.Tensor:
        """[queries] bool: whether the k = 20 vote of each validation query names its fine class."""
        return self.vote_correct(*self._embeddings(net, style))

    def vote_correct(
        self, emb_q: torch.Tensor, emb_g: torch.Tensor, allowed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[queries] bool for embeddings made elsewhere; ``allowed`` masks the gallery per query."""
        pred = knn_vote(similarities(emb_q, emb_g, allowed), self.g_fine, len(self.to_cat), 20)
        return pred == self.q_fine

    def report(self, net: nn.Module, tag: str) -> None:
        for style in self.sets:
            emb_q, emb_g = self._embeddings(net, style)
            r, _ = knn_scores(emb_q, emb_g, self.q_fine, self.g_fine, self.to_cat, None, 20, len(self.to_cat))
            print(f"{tag} {style}: fine acc {r['fine_acc']:.4f}, mAP@R {r['map_at_r']:.4f}", flush=True)
