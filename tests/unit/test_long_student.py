"""The long-run driver's budget arithmetic and the command each variant runs."""

from __future__ import annotations

from pathlib import Path

from model_store.distill.train import _parser
from research.experiments.long_student import _command, epochs_within, steady_rate


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


def test_calibration_rate_leaves_out_the_warm_up_window() -> None:
    # the progress lines of the H200 calibration (53 steps): CUDA set-up fills the first window
    log = (
        " 47%| 25/53 [00:11<00:13,  2.12it/s, loss=1.445, l2=0.6083, it/s=2.12]\r"
        " 94%| 50/53 [00:13<00:00,  3.79it/s, loss=0.5178, l2=0.1204, it/s=18.13]\r"
        '100%| 53/53 [00:13<00:00,  3.95it/s, loss=0.4808, l2=0.1166, it/s=14.11]{"eval_step": 53}\n'
        "100%| 53/53 [00:15<00:00,  3.38it/s, loss=0.4808, l2=0.1166, it/s=14.11]\n"
    )
    assert steady_rate(log) == (18.13 + 14.11) / 2
    assert steady_rate(" 47%| 25/53 [00:11<00:13,  2.12it/s, loss=1.4, it/s=2.12]") is None
    assert steady_rate("no progress at all") is None
