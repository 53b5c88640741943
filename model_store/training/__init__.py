"""Reusable training machinery: the loop, checkpoints, seeds and the PNG report."""

from model_store.training.checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint
from model_store.training.loop import CheckpointMismatchError, TrainConfig, Trainer, TrainResult
from model_store.training.report import confusion_matrix, save_report
from model_store.training.seeding import rng_state, seed_everything, set_rng_state

__all__ = [
    "CheckpointMismatchError", "TrainConfig", "TrainResult", "Trainer", "confusion_matrix", "latest_checkpoint",
    "load_checkpoint", "rng_state", "save_checkpoint", "save_report", "seed_everything", "set_rng_state",
]  # fmt: skip
