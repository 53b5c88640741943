"""Score formulas: background table, position geometry, visual and total weights."""

from __future__ import annotations

import pytest

from model_store.quality.scoring import (
    BackgroundScoreTable,
    PositionScoreConfig,
    ScoringConfig,
    TotalWeights,
    VisualScoreConfig,
    position_geometry,
    position_score,
)

CFG = PositionScoreConfig()


def test_background_table_rows_follow_the_seed() -> None:
    table = BackgroundScoreTable()
    white, life = {"white": 1.0}, {"life_scene": 1.0}
    assert table.score(white, "digital") > table.score(life, "digital")
    assert table.score(life, "food") > table.score(white, "food")
    assert table.score(white, None) == table.score(white, "unknown-scene") == table.row("default")["white"]


def test_background_score_is_expected_over_probabilities() -> None:
    table = BackgroundScoreTable()
    mixed = {"white": 0.5, "life_scene": 0.5}
    row = table.row("digital")
    assert table.score(mixed, "digital") == pytest.approx(0.5 * row["white"] + 0.5 * row["life_scene"])


def test_table_validation() -> None:
    with pytest.raises(ValueError, match="default"):
        full_row = dict.fromkeys(("white", "black", "solid", "gradient", "life_scene"), 1.0)
        BackgroundScoreTable({"digital": full_row})
    with pytest.raises(ValueError, match="missing"):
        BackgroundScoreTable({"default": {"white": 1.0}})


def test_position_geometry_prefers_a_large_centred_whole_product() -> None:
    good = position_geometry((0.07, 0.07, 0.93, 0.93), CFG)
    small = position_geometry((0.4, 0.4, 0.6, 0.6), CFG)
    corner = position_geometry((0.0, 0.0, 0.3, 0.3), CFG)
    cut = position_geometry((0.0, 0.1, 0.8, 0.9), CFG)  # touches the left border
    assert good == pytest.approx(1.0)
    assert good > cut > small > corner >= 0.0
    assert small == pytest.approx(0.2 / 0.85)


def test_position_score_uses_confidence_and_category() -> None:
    box = (0.1, 0.1, 0.9, 0.9)
    sure_subject = position_score(box, 1.0, 1.0, CFG)
    sure_non_subject = position_score(box, 1.0, 0.0, CFG)
    unsure = position_score(box, 0.0, 1.0, CFG)
    assert sure_subject > sure_non_subject == pytest.approx(sure_subject * CFG.subject_floor)
    assert unsure == pytest.approx(CFG.neutral)
    for p in (0.0, 0.3, 1.0):
        assert 0.0 <= position_score((0.0, 0.0, 1.0, 1.0), p, p, CFG) <= 1.0


def test_visual_and_total_weights_are_normalised() -> None:
    assert VisualScoreConfig(2.0, 2.0).score(1.0, 0.0) == pytest.approx(0.5)
    w = TotalWeights(1.0, 1.0, 2.0)
    assert w.normalised().visual == pytest.approx(0.5)
    assert w.total(1.0, 1.0, 0.0) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        TotalWeights(-1.0, 1.0, 1.0).normalised()


def test_scoring_config_round_trip() -> None:
    cfg = ScoringConfig(weights=TotalWeights(0.2, 0.3, 0.5), visual=VisualScoreConfig(0.7, 0.3))
    again = ScoringConfig.from_dict(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()
