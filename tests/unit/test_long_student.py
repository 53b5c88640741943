"""The long-run driver's budget arithmetic and the command each variant runs."""

from __future__ import annotations

from pathlib import Path

from infra.experiments.long_student import _command, epochs_within
from model_store.distill.train import _parser


def test_epochs_fit_the_budget_at_the_slowest_rate() -> None:
    # 844 steps of 64 make an epoch of the 54,000-item pool
    assert epochs_within(20.0, 380.0, 0.85, 64, most=80) == 7  # 6,460 steps
    assert epochs_within(0.43, 400.0, 0.85, 256, most=80) == 0  # the first GPU attempt's rate
    assert epochs_within(1000.0, 380.0, 0.85, 64, most=80) == 80


def test_each_variant_runs_the_plain_train_command(tmp_path: Path) -> None:
    cmd = _command(tmp_path / "reg", tmp_path / "out", "student", "5", 7, ["--device", "cuda"], ["--mixup-alpha", "1"])
    assert cmd[1:4] == ["-m", "model_store.distill.train", "student"]
    args = _parser().parse_args(cmd[3:])  # everything the driver passes is a train.py option
    assert (args.version, args.epochs, args.mixup_alpha, args.device) == ("5", 7.0, 1.0, "cuda")
