"""A small generic training loop: a step function, a batch function and an eval function passed in.

Determinism: ``batch_fn(step)`` must be a pure function of the step number (seed its own RNG from
it); the loop seeds every global RNG once and checkpoints their states, so a run resumed from a
checkpoint ends with the same weights as an uninterrupted one. CUDA runs use bf16 autocast, the
CPU runs the same code in fp32. cuDNN autotuning (``cudnn.benchmark``) stays off: it pays only
where shapes repeat. On an H200 every new input shape cost about 8 s of kernel set-up whatever
the setting; the student's teachers therefore embed whole batches on CUDA (``TeacherSet``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from model_store.training.checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint
from model_store.training.seeding import rng_state, seed_everything, set_rng_state

StepFn = Callable[[nn.Module, Any, int], tuple[torch.Tensor, dict[str, float]]]
EvalFn = Callable[[nn.Module, int], dict[str, float]]
BatchFn = Callable[[int], Any]


@dataclass(frozen=True)
class TrainConfig:
    total_steps: int
    seed: int = 0
    device: str = "cpu"
    eval_every: int = 0  # 0: evaluate only at the end
    checkpoint_every: int = 0  # 0: no checkpoints
    checkpoint_dir: Path | None = None
    grad_clip: float | None = 5.0
    select_metric: str | None = None  # keep the state with the highest value of this eval metric
    log_every: int = 25
    progress: bool = True
    prefetch: bool = True  # build the next batch in a thread while this step runs
    loader_workers: int = 0  # >0: build batches in this many worker processes (a GPU outruns one thread)
    stop_after: int | None = None  # stop once this many steps are done (a deliberate interruption)
    # what makes two runs the same run (recipe, parents); a checkpoint of another run is refused on resume
    run_identity: Mapping[str, Any] | None = None


@dataclass
class TrainResult:
    history: dict[str, list[dict[str, float]]] = field(default_factory=lambda: {"train": [], "eval": []})
    steps_done: int = 0
    best_step: int | None = None
    best_value: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    finished: bool = False
    train_seconds: float = 0.0  # wall time of the steps (batch wait included), summed over resumed runs


class CheckpointMismatchError(ValueError):
    """A checkpoint found on resume belongs to a run with another recipe or other parents."""


def _canonical(identity: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """JSON-shaped (tuples become lists), so that a stored identity compares equal to a fresh one."""
    return None if identity is None else json.loads(json.dumps(identity, sort_keys=True, default=str))


def _differences(stored: Mapping[str, Any], wanted: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(stored) | set(wanted)):
        a, b = stored.get(key), wanted.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: checkpoint {a!r}, this run {b!r}")
    return out


class _StepBatches(torch.utils.data.Dataset):
    """``batch_fn`` as a map-style dataset indexed by step, so DataLoader workers can build batches."""

    def __init__(self, batch_fn: BatchFn) -> None:
        self.batch_fn = batch_fn

    def __getitem__(self, step: int) -> Any:
        return self.batch_fn(step)


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}


class Trainer:
    """Runs ``step_fn`` for ``config.total_steps`` steps with eval, checkpoints and resume."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        step_fn: StepFn,
        batch_fn: BatchFn,
        config: TrainConfig,
        eval_fn: EvalFn | None = None,
    ) -> None:
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.step_fn, self.batch_fn, self.eval_fn, self.config = step_fn, batch_fn, eval_fn, config
        self.result = TrainResult()

    # -- checkpoints -------------------------------------------------------------------------
    def _payload(self) -> dict[str, Any]:
        r = self.result
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "step": r.steps_done,
            "rng": rng_state(),
            "history": r.history,
            "best": {"step": r.best_step, "value": r.best_value, "state": r.best_state},
            "finished": r.finished,
            "train_seconds": r.train_seconds,
            "run_identity": _canonical(self.config.run_identity),
        }

    def _restore(self, path: Path) -> None:
        payload = load_checkpoint(path)
        self._check_identity(path, payload.get("run_identity"))
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        if self.scheduler is not None and payload["scheduler"] is not None:
            self.scheduler.load_state_dict(payload["scheduler"])
        set_rng_state(payload["rng"])
        best = payload["best"]
        self.result = TrainResult(
            history=payload["history"],
            steps_done=payload["step"],
            best_step=best["step"],
            best_value=best["value"],
            best_state=best["state"],
            finished=payload["finished"],
            train_seconds=float(payload.get("train_seconds", 0.0)),
        )
        print(f"resumed from {path} at step {payload['step']}", file=sys.stderr, flush=True)

    def _check_identity(self, path: Path, stored: Mapping[str, Any] | None) -> None:
        wanted = _canonical(self.config.run_identity)
        if wanted is None:
            return
        if stored is None:  # written before checkpoints carried it
            print(f"warning: {path} records no run identity; resuming it unchecked", file=sys.stderr, flush=True)
            return
        diffs = _differences(stored, wanted)
        if diffs:
            raise CheckpointMismatchError(
                f"{path} belongs to another run ({'; '.join(diffs[:8])}); give this run its own --out or drop --resume"
            )

    # -- evaluation --------------------------------------------------------------------------
    def _evaluate(self, step: int) -> dict[str, float]:
        if self.eval_fn is None:
            return {}
        self.model.eval()
        with torch.inference_mode(), self._autocast():
            metrics = {k: float(v) for k, v in self.eval_fn(self.model, step).items()}
        self.model.train()
        r, key = self.result, self.config.select_metric
        r.history["eval"].append({"step": float(step), **metrics})
        if key is not None and key in metrics and (r.best_value is None or metrics[key] > r.best_value):
            r.best_step, r.best_value, r.best_state = step, metrics[key], _cpu_state(self.model)
        print(json.dumps({"eval_step": step, **metrics}), file=sys.stderr, flush=True)
        return metrics

    def _autocast(self) -> torch.autocast:
        device_type = "cuda" if self.config.device.startswith("cuda") else "cpu"
        return torch.autocast(device_type, dtype=torch.bfloat16, enabled=device_type == "cuda")

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> TrainResult:
        cfg = self.config
        seed_everything(cfg.seed)
        ckpt = latest_checkpoint(cfg.checkpoint_dir) if resume and cfg.checkpoint_dir else None
        if ckpt is not None:
            self._restore(ckpt)
        r = self.result
        self.model.train()
        bar = tqdm(
            total=cfg.total_steps, initial=r.steps_done, disable=not cfg.progress, dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 30.0, file=sys.stderr,
        )  # fmt: skip
        batches = self._batches(r.steps_done)
        sums: dict[str, float] = {}
        count, t0 = 0, time.perf_counter()
        try:
            for step in range(r.steps_done, cfg.total_steps):
                if cfg.stop_after is not None and r.steps_done >= cfg.stop_after:
                    return r
                started = time.perf_counter()
                batch = next(batches)
                terms = self._train_step(batch, step)
                r.train_seconds += time.perf_counter() - started
                r.steps_done = step + 1
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                bar.update(1)
                if count == cfg.log_every or r.steps_done == cfg.total_steps:
                    means = {k: v / count for k, v in sums.items()}
                    r.history["train"].append({"step": float(r.steps_done), **means})
                    rate = count / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in means.items()} | {"it/s": f"{rate:.2f}"})
                    sums, count, t0 = {}, 0, time.perf_counter()
                if cfg.eval_every and r.steps_done % cfg.eval_every == 0 and r.steps_done < cfg.total_steps:
                    self._evaluate(r.steps_done)
                if cfg.checkpoint_every and cfg.checkpoint_dir and r.steps_done % cfg.checkpoint_every == 0:
                    save_checkpoint(cfg.checkpoint_dir, r.steps_done, self._payload())
            if not r.finished and r.steps_done == cfg.total_steps:
                self._evaluate(r.steps_done)
                r.finished = True
                if cfg.checkpoint_dir:
                    save_checkpoint(cfg.checkpoint_dir, r.steps_done, self._payload())
            return r
        finally:
            bar.close()
            batches.close()

    def _batches(self, start: int) -> Iterator[Any]:
        """Batches of steps ``start..total_steps-1`` in order, built ahead of the step that uses them.

        Each batch is ``batch_fn(step)``, a pure function of the step, so threads, worker processes
        and a resume all see the same data.
        """
        cfg = self.config
        steps = range(start, cfg.total_steps)
        if cfg.loader_workers > 0:
            loader = torch.utils.data.DataLoader(
                _StepBatches(self.batch_fn), batch_size=None, sampler=steps, num_workers=cfg.loader_workers,
                prefetch_factor=4, pin_memory=cfg.device.startswith("cuda"),
                generator=torch.Generator().manual_seed(cfg.seed),  # its own: the global RNG must not move
            )  # fmt: skip
            yield from loader
            return
        if not cfg.prefetch:
            yield from (self.batch_fn(step) for step in steps)
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self.batch_fn, start) if start < cfg.total_steps else None
            for step in steps:
                batch = pending.result()
                pending = pool.submit(self.batch_fn, step + 1) if step + 1 < cfg.total_steps else None
                yield batch

    def _train_step(self, batch: Any, step: int) -> dict[str, float]:
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss, terms = self.step_fn(self.model, batch, step)
        loss.backward()
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return {"loss": float(loss.detach()), **{k: float(v) for k, v in terms.items()}}

    def final_state(self) -> dict[str, torch.Tensor]:
        """The selected state (best by ``select_metric``) or the last one."""
        r = self.result
        return r.best_state if r.best_state is not None else _cpu_state(self.model)
