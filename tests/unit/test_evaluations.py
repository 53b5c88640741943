"""Pure helpers of stored evaluations: the file format (pack, pair, cache key) and the evaluation's
own bookkeeping (protocol checks, example choice, image files, per-style scoring)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model_store.distill.eval_examples import choose_examples, image_key, save_image, upscale
from model_store.distill.evaluate import STYLES, EvaluationError, Protocol, score_style, vs_active
from model_store.distill.taxonomy import Taxonomy
from model_store.evaluations import (
    IMAGES_DIR,
    is_current,
    pack_correct,
    paired_difference,
    paired_interval,
    protocol_key,
    read_evaluation,
    unpack_correct,
    write_evaluation,
)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 2000])
def test_correctness_survives_packing(n: int) -> None:
    bits = np.random.default_rng(n).random(n) < 0.7
    assert np.array_equal(unpack_correct(pack_correct(bits), n), bits)


def test_unpacking_more_queries_than_stored_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 17"):
        unpack_correct(pack_correct(np.ones(8, dtype=bool)), 17)


def test_protocol_key_changes_with_any_field_and_not_with_key_order() -> None:
    base = Protocol().to_dict()
    assert protocol_key(base) == protocol_key(dict(reversed(list(base.items()))))
    for field, value in (("k", 10), ("seed", 1), ("queries", 100), ("gallery_size", 500), ("top_k", 4)):
        assert protocol_key({**base, field: value}) != protocol_key(base), field


def test_current_only_for_the_same_weights_and_protocol() -> None:
    proto = Protocol().to_dict()
    stored = {"weights_sha256": "aa", "protocol_key": protocol_key(proto)}
    assert is_current(stored, "aa", proto)
    assert not is_current(stored, "bb", proto)
    assert not is_current(stored, "aa", {**proto, "k": 5})
    assert not is_current(None, "aa", proto)


def test_pairing_identical_answers_gives_a_zero_width_interval() -> None:
    a = np.random.default_rng(0).random(500) < 0.8
    assert paired_interval(a, a) == (0.0, 0.0, 0.0)


def test_pairing_measures_the_difference_and_covers_it() -> None:
    rng = np.random.default_rng(1)
    a = rng.random(4000) < 0.7
    b = a | (rng.random(4000) < 0.1)  # b fixes ~3 % of a's mistakes, breaks nothing
    diff, low, high = paired_interval(a, b)
    assert diff == pytest.approx(b.mean() - a.mean())
    assert 0 < low < diff < high


def _evaluation(ref: str, key: str, bits: dict[str, np.ndarray]) -> dict:
    return {"model_ref": ref, "protocol_key": key,
            "styles": {s: {"fine_correct": pack_correct(b), "n_queries": len(b)} for s, b in bits.items()}}  # fmt: skip


def test_vs_active_pairs_each_style_and_skips_the_model_itself() -> None:
    rng = np.random.default_rng(2)
    active_bits = {s: rng.random(300) < 0.8 for s in STYLES}
    other_bits = {"plain": active_bits["plain"], "seller": np.ones(300, dtype=bool)}
    active, other = _evaluation("student@17", "k1", active_bits), _evaluation("fused@1", "k1", other_bits)
    paired = vs_active(other, active)
    assert paired is not None and paired["ref"] == "student@17" and paired["plain"] == [0.0, 0.0, 0.0]
    assert paired["seller"][0] == pytest.approx(1 - active_bits["seller"].mean())
    assert vs_active(active, active) is None and vs_active(other, None) is None
    with pytest.raises(ValueError, match="different queries"):
        paired_difference(active, _evaluation("fused@1", "k2", other_bits), "plain")


def test_write_is_readable_and_another_schema_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / "m" / "1").mkdir(parents=True)
    write_evaluation(tmp_path, "m", "1", {"schema": 1, "x": 2})
    assert read_evaluation(tmp_path, "m", "1") == {"schema": 1, "x": 2}
    assert not list((tmp_path / "m" / "1").glob("*.tmp"))
    (tmp_path / "m" / "1" / "evaluation.json").write_text(json.dumps({"schema": 99}))
    assert read_evaluation(tmp_path, "m", "1") is None and read_evaluation(tmp_path, "m", "2") is None


@pytest.mark.parametrize(
    "fields",
    [{"gallery_size": 0}, {"gallery_size": 60_001}, {"queries": 10_001}, {"k": 0}, {"gallery_size": 10, "k": 11},
     {"examples": -1}, {"queries": 5, "examples": 6}, {"top_k": 0}],
)  # fmt: skip
def test_impossible_protocols_are_refused(fields: dict) -> None:
    with pytest.raises(EvaluationError, match="bad protocol"):
        Protocol(**fields)


def test_protocol_records_the_query_split_and_styles() -> None:
    proto = Protocol().to_dict()
    assert proto["queries_from"] == "test" and proto["styles"] == ["plain", "seller"]
    assert (proto["gallery_size"], proto["queries"], proto["k"]) == (10_000, 2_000, 20)


def test_examples_take_categories_and_styles_in_turn_without_repeats() -> None:
    q_cat = np.random.default_rng(3).integers(0, 3, 500)
    chosen = choose_examples(q_cat, 3, 12, seed=0, styles=STYLES)
    rows = [row for _, row in chosen]
    assert len(set(rows)) == 12
    pairs = [(style, int(q_cat[row])) for style, row in chosen]
    assert sorted(pairs) == sorted((s, c) for s in STYLES for c in range(3) for _ in range(2))
    assert choose_examples(q_cat, 3, 12, seed=0, styles=STYLES) == chosen
    assert choose_examples(q_cat, 3, 12, seed=1, styles=STYLES) != chosen


def test_examples_stop_when_queries_run_out() -> None:
    q_cat = np.array([0, 0, 2])  # no item of category 1
    chosen = choose_examples(q_cat, 3, 12, seed=0, styles=STYLES)
    assert sorted(row for _, row in chosen) == [0, 1, 2]


def test_image_keys_name_what_changes_the_pixels() -> None:
    assert image_key("plain", "test", 5, 2000, 64) == image_key("plain", "test", 5, 2001, 64)
    assert image_key("seller", "test", 5, 2000, 64) != image_key("seller", "test", 5, 2001, 64)
    assert image_key("seller", "train", 5, 2000, 64) != image_key("seller", "test", 5, 2000, 64)
    assert image_key("plain", "test", 5, 0, 64) != image_key("plain", "test", 5, 0, 96)


def test_images_are_upscaled_blocks_written_once(tmp_path: Path) -> None:
    image = np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    big = upscale(image)
    assert (
        big.shape == (128, 128, 3) and np.array_equal(big[::2, ::2], image) and np.array_equal(big[1::2, 1::2], image)
    )
    relative = save_image(tmp_path, "x.png", image)
    assert relative == f"{IMAGES_DIR.as_posix()}/x.png"
    with Image.open(tmp_path / relative) as saved:
        assert np.array_equal(np.asarray(saved), big)
    save_image(tmp_path, "x.png", np.zeros_like(image))  # already there: kept, not rewritten
    with Image.open(tmp_path / relative) as saved:
        assert np.array_equal(np.asarray(saved), big)
    assert [p.name for p in (tmp_path / IMAGES_DIR).iterdir()] == ["x.png"]


def test_scoring_separates_fine_from_coarse_mistakes() -> None:
    """Shirts (clothing) embedded like T-shirts: fine wrong, coarse right; everything else exact."""
    tax = Taxonomy()
    n_fine = len(tax.class_names)
    shirt, tshirt = tax.class_names.index("shirt"), tax.class_names.index("tshirt_top")
    g_fine = torch.arange(n_fine).repeat_interleave(30)
    q_fine = torch.arange(n_fine).repeat_interleave(5)
    basis = torch.eye(n_fine)
    emb_g = basis[g_fine] + 0.01 * torch.randn(len(g_fine), n_fine, generator=torch.Generator().manual_seed(0))
    emb_q = basis[torch.where(q_fine == shirt, tshirt, q_fine)]
    record, sims = score_style(emb_q, emb_g, q_fine, g_fine, tax, k=20)
    assert sims.shape == (len(q_fine), len(g_fine))
    assert record["fine_acc"] == pytest.approx(1 - 5 / len(q_fine))
    assert record["coarse_acc"] == 1.0 and set(record["coarse_acc_by_category"].values()) == {1.0}
    assert record["fine_acc_by_class"]["shirt"] == 0.0 and record["fine_acc_by_class"]["sneaker"] == 1.0
    assert record["fine_acc_by_category"]["clothing"] == pytest.approx(25 / 30)
    assert record["fine_acc_by_category"]["shoes"] == 1.0
    correct = unpack_correct(record["fine_correct"], record["n_queries"])
    assert np.array_equal(correct, (q_fine != shirt).numpy())
