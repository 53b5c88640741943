"""The generic trainer: resume after an interruption ends with the same weights; report PNG."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from model_store.training import (
    CheckpointMismatchError,
    TrainConfig,
    Trainer,
    confusion_matrix,
    latest_checkpoint,
    save_report,
)

TOTAL = 12


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(16, 8, generator=g)
    return x, (x[:, 0] > 0).long()


def _step(model: nn.Module, batch, step: int):
    x, y = batch
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y)
    return loss, {"ce": float(loss.detach())}


def _eval(model: nn.Module, step: int) -> dict[str, float]:
    x, y = _batch(99_999)
    return {"acc": float((model(x).argmax(1) == y).float().mean())}


def _trainer(tmp_path, **over) -> Trainer:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))  # dropout uses RNG
    opt = torch.optim.AdamW(model.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=TOTAL)
    cfg = TrainConfig(total_steps=TOTAL, seed=3, eval_every=4, checkpoint_every=3, checkpoint_dir=tmp_path,
                      select_metric="acc", progress=False, log_every=2, **over)  # fmt: skip
    return Trainer(model, opt, sched, _step, _batch, cfg, eval_fn=_eval)


def test_resume_gives_same_final_weights(tmp_path):
    straight = _trainer(tmp_path / "a")
    straight.fit()
    interrupted = _trainer(tmp_path / "b", stop_after=7)  # last checkpoint at step 6
    result = interrupted.fit()
    assert result.steps_done == 7 and not result.finished
    assert latest_checkpoint(tmp_path / "b").name == "ckpt_00000006.pt"
    resumed = _trainer(tmp_path / "b")  # fresh model and optimizer, as after a crash
    result = resumed.fit(resume=True)
    assert result.finished and result.steps_done == TOTAL
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [e["step"] for e in result.history["eval"]] == [4.0, 8.0, 12.0]
    assert result.best_state is not None


def test_report_png(tmp_path):
    trainer = _trainer(tmp_path / "c")
    result = trainer.fit()
    cm = confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
    assert cm.tolist() == [[1, 0], [1, 1]]
    path = save_report(tmp_path / "r.png", result.history, {"val": (cm, ["a", "b"])}, title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_seconds_add_up_over_a_resume_and_survive_a_re_registration(tmp_path):
    interrupted = _trainer(tmp_path / "d", stop_after=7)
    first = interrupted.fit().train_seconds
    assert first > 0
    resumed = _trainer(tmp_path / "d").fit(resume=True)  # restarts from the step-6 checkpoint
    assert resumed.train_seconds > 0 and resumed.finished
    again = _trainer(tmp_path / "d").fit(resume=True)  # a finished run, only re-read
    assert again.train_seconds == resumed.train_seconds


def test_worker_processes_feed_the_same_batches_as_the_prefetch_thread(tmp_path):
    threaded = _trainer(tmp_path / "e")
    threaded.fit()
    workers = _trainer(tmp_path / "f", loader_workers=2)
    interrupted = _trainer(tmp_path / "g", loader_workers=2, stop_after=7)
    interrupted.fit()
    resumed = _trainer(tmp_path / "g", loader_workers=2)
    resumed.fit(resume=True)
    workers.fit()
    a = threaded.model.state_dict()
    for other in (workers, resumed):
        b = other.model.state_dict()
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path, capsys):
    recipe = {"recipe": {"gamma": 1.0, "coral_layers": (10, 14)}, "teachers": ["t@4"]}
    _trainer(tmp_path / "h", stop_after=7, run_identity=recipe).fit()
    other = {"recipe": {"gamma": 0.0, "coral_layers": (10, 14)}, "teachers": ["t@4"]}
    with pytest.raises(CheckpointMismatchError, match=r"recipe\.gamma: checkpoint 1\.0, this run 0\.0"):
        _trainer(tmp_path / "h", run_identity=other).fit(resume=True)
    same = {"teachers": ["t@4"], "recipe": {"coral_layers": [10, 14], "gamma": 1.0}}  # as read back from JSON
    assert _trainer(tmp_path / "h", run_identity=same).fit(resume=True).finished


def test_a_checkpoint_without_an_identity_resumes_with_a_warning(tmp_path, capsys):
    _trainer(tmp_path / "i", stop_after=7).fit()  # no identity recorded, as before identities existed
    assert _trainer(tmp_path / "i", run_identity={"recipe": {"gamma": 1.0}}).fit(resume=True).finished
    assert "records no run identity" in capsys.readouterr().err
