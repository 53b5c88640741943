"""KNN category voting over trusted neighbours (seed 000, [0069]: 20 candidates, most votes wins)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Neighbour:
    product_id: str
    category: str
    label_source: str
    score: float


@dataclass(frozen=True)
class CategoryVote:
    label: str | None
    vote_share: float
    votes: dict[str, int] = field(default_factory=dict)
    k: int = 0
    neighbours: tuple[Neighbour, ...] = ()


def vote_category(neighbours: Sequence[Neighbour], k: int) -> CategoryVote:
    """Majority vote of the top ``k``; ties go to the label with the larger summed similarity.

    An empty gallery yields ``label=None`` rather than a guess.
    """
    used = tuple(neighbours[:k])
    if not used:
        return CategoryVote(label=None, vote_share=0.0, votes={}, k=0, neighbours=())
    votes = Counter(n.category for n in used)
    score_sum: dict[str, float] = {}
    for n in used:
        score_sum[n.category] = score_sum.get(n.category, 0.0) + n.score
    label = max(votes, key=lambda c: (votes[c], score_sum[c]))
    return CategoryVote(
        label=label,
        vote_share=votes[label] / len(used),
        votes=dict(sorted(votes.items())),
        k=len(used),
        neighbours=used,
    )
