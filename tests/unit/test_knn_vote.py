"""KNN category vote: most votes among the top k wins, ties go to the larger summed similarity."""

from __future__ import annotations

import pytest

from processors.knn_vote import CategoryVote, Neighbour, vote_category


def n(category: str, score: float, pid: str | None = None) -> Neighbour:
    return Neighbour(product_id=pid or f"{category}-{score}", category=category, label_source="confirmed", score=score)


def test_majority_wins_over_higher_scores() -> None:
    neighbours = [n("bags", 0.99), n("shoes", 0.5), n("shoes", 0.4), n("shoes", 0.3)]
    vote = vote_category(neighbours, k=20)
    assert vote.label == "shoes"
    assert vote.votes == {"bags": 1, "shoes": 3}
    assert vote.vote_share == pytest.approx(0.75)
    assert vote.k == 4


def test_tie_broken_by_summed_score() -> None:
    neighbours = [n("bags", 0.9), n("shoes", 0.8), n("shoes", 0.7), n("bags", 0.1)]
    vote = vote_category(neighbours, k=4)
    assert vote.votes == {"bags": 2, "shoes": 2}
    assert vote.label == "shoes"  # 1.5 > 1.0
    assert vote.vote_share == pytest.approx(0.5)


def test_tie_break_does_not_depend_on_order() -> None:
    neighbours = [n("shoes", 0.8), n("bags", 0.9), n("bags", 0.1), n("shoes", 0.7)]
    assert vote_category(neighbours, k=4).label == "shoes"
    assert vote_category(list(reversed(neighbours)), k=4).label == "shoes"


def test_only_top_k_vote() -> None:
    neighbours = [n("hats", 0.9), n("hats", 0.8), n("shoes", 0.7), n("shoes", 0.6), n("shoes", 0.5)]
    vote = vote_category(neighbours, k=2)
    assert vote.label == "hats"
    assert vote.k == 2
    assert vote.votes == {"hats": 2}
    assert vote.vote_share == 1.0
    assert vote.neighbours == tuple(neighbours[:2])


def test_k_larger_than_the_gallery_uses_all() -> None:
    neighbours = [n("hats", 0.9), n("shoes", 0.5), n("shoes", 0.4)]
    vote = vote_category(neighbours, k=20)
    assert vote.k == 3
    assert vote.neighbours == tuple(neighbours)


@pytest.mark.parametrize(("neighbours", "k"), [([], 20), ([n("hats", 0.9)], 0)], ids=["empty-gallery", "k-zero"])
def test_no_voters_gives_no_label(neighbours: list[Neighbour], k: int) -> None:
    assert vote_category(neighbours, k) == CategoryVote(label=None, vote_share=0.0, votes={}, k=0, neighbours=())


def test_single_neighbour_is_unanimous() -> None:
    vote = vote_category([n("hats", 0.2)], k=5)
    assert (vote.label, vote.vote_share, vote.votes, vote.k) == ("hats", 1.0, {"hats": 1}, 1)


def test_votes_are_sorted_by_category_and_sum_to_k() -> None:
    neighbours = [n(c, 0.5) for c in ["z", "a", "m", "a", "z", "a"]]
    vote = vote_category(neighbours, k=6)
    assert list(vote.votes) == ["a", "m", "z"]
    assert sum(vote.votes.values()) == vote.k == 6
    assert vote.label == "a"
    assert vote.vote_share == pytest.approx(0.5)


def test_accepts_a_tuple_and_returns_a_tuple() -> None:
    neighbours = (n("hats", 0.9), n("hats", 0.8))
    vote = vote_category(neighbours, k=1)
    assert isinstance(vote.neighbours, tuple)
    assert vote.neighbours == neighbours[:1]
