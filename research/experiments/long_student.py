"""Long student runs sized to a wall-clock budget: calibrate, then train the variants side by side.

The student recipe has only ever had CPU-sized schedules (5 epochs, then 2-3-epoch warm restarts).
On a GPU the same ``python -m model_store.distill.train student`` can run many more epochs; this
driver measures how many fit. It first runs every variant for ``--calibrate-epochs`` at once
(registered as ``student-calib``) and reads their steps per second, then starts the real runs,
all variants concurrently, for as many whole epochs as the slowest one finishes in
``--budget-seconds``. Each real run registers ``student@<version>`` with the exact command that
reproduces it (epochs included), so the budget arithmetic never becomes part of the recipe.

    PYTHONPATH=. python research/experiments/long_student.py --registry REG --out runs/long \\
        --variant 4 "--lr 1.5e-3 --head-lr 4.5e-3" --variant 5 "--lr 3e-3 --head-lr 9e-3" \\
        --budget-seconds 300 -- --device cuda --loader-workers 6 --teacher-version 2

Batch 256 is the default: on an H200 it ran at about 20 steps/s per run, two runs side by side,
and 20 epochs at 256 (lr 3e-3, heads 9e-3; ``student@17``) beat the CPU recipe (docs/models.md).
Per training sample batch 64 fits the teachers better on the CPU; its GPU step rate is not
measured.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from model_store.distill.config import RecipeConfig, data_split

SAMPLES_PER_EPOCH = len(data_split(RecipeConfig())[0])  # the recipe's training pool (54,000 items)


def _command(registry: Path, out: Path, name: str, version: str, epochs: float, shared: list[str],
             extra: list[str]) -> list[str]:  # fmt: skip
    return [sys.executable, "-m", "model_store.distill.train", "student", "--registry", str(registry),
            "--out", str(out), "--name", name, "--version", version, "--epochs", f"{epochs:g}",
            "--checkpoint-every", "1000", *shared, *extra]  # fmt: skip


def _last_eval(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith('{"eval_step"')]
    return lines[-1] if lines else "(no eval yet)"


def epochs_within(steps_per_second: float, budget_seconds: float, safety: float, batch_size: int, most: int) -> int:
    """Whole epochs of the training pool that fit ``safety`` of the budget at the measured rate."""
    steps_per_epoch = math.ceil(SAMPLES_PER_EPOCH / batch_size)
    return min(most, int(steps_per_second * budget_seconds * safety / steps_per_epoch))


def _run_all(commands: dict[str, list[str]], logs: Path, deadline: float) -> dict[str, int]:
    """Start every command at once, wait for all; past ``deadline`` the rest are killed (code -9).

    Each run's latest validation line is printed once a minute, so a watcher sees progress.
    """
    logs.mkdir(parents=True, exist_ok=True)
    procs = {}
    for key, cmd in commands.items():
        print(f"[{time.strftime('%H:%M:%S')}] start {key}: {shlex.join(cmd)}", flush=True)
        log = (logs / f"{key}.log").open("w")
        procs[key] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)  # noqa: SIM115
    codes: dict[str, int] = {}
    next_report = time.monotonic() + 60
    while len(codes) < len(procs):
        if time.monotonic() > next_report:
            next_report += 60
            for key in procs:
                print(f"[{time.strftime('%H:%M:%S')}] {key}: {_last_eval(logs / f'{key}.log')}", flush=True)
        for key, (proc, log) in procs.items():
            if key in codes:
                continue
            if proc.poll() is not None:
                codes[key] = proc.returncode
                log.close()
            elif time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                codes[key] = -9
                log.close()
        time.sleep(1.0)
    print(f"[{time.strftime('%H:%M:%S')}] exit codes {codes}", flush=True)
    return codes


def steady_rate(log_text: str) -> float | None:
    """Median steps per second over a run's logged progress windows (``it/s=``), the first left out.

    A run's average rate counts its first steps, where CUDA sets up kernels for every new shape:
    on an H200 a 53-step calibration averaged 4 steps/s, its windows read 2.1, 18.1 and 14.1, and
    the long runs then trained at 20. Windows are keyed by their step, so the progress bar's
    closing repeat of the last one counts once.
    """
    windows = {int(step): float(rate) for step, rate in re.findall(r"(\d+)/\d+ \[[^\]]*it/s=([0-9.]+)\]", log_text)}
    later = [rate for step, rate in sorted(windows.items())[1:]]
    return statistics.median(later) if later else None


def _rate(registry: Path, name: str, version: str, log: Path) -> float:
    """Steady steps per second of a calibration run; its average over all steps if it logged none."""
    steady = steady_rate(log.read_text(errors="replace")) if log.is_file() else None
    if steady is not None:
        return steady
    metrics = json.loads((registry / name / version / "manifest.json").read_text())["metrics"]
    return metrics["steps"] / metrics["train_seconds"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--registry", type=Path, required=True, help="registry holding the teachers; runs register here")
    p.add_argument("--out", type=Path, required=True, help="run directories and logs")
    p.add_argument("--variant", nargs=2, action="append", metavar=("VERSION", "ARGS"), required=True,
                   help="a student version to register and its own extra train.py arguments")  # fmt: skip
    p.add_argument("--budget-seconds", type=float, required=True, help="wall-clock time for the real runs' steps")
    p.add_argument("--calibrate-epochs", type=float, default=0.25)
    p.add_argument("--calibrate-seconds", type=float, default=150.0, help="give up if calibration takes longer")
    p.add_argument("--logs", type=Path, help="where the runs' logs go (default: OUT/logs)")
    p.add_argument("--max-epochs", type=int, default=80)
    p.add_argument("--min-epochs", type=int, default=3, help="stop after calibration if fewer would fit")
    p.add_argument("--safety", type=float, default=0.85, help="share of the budget the step time may fill")
    p.add_argument("--kill-after", type=float, default=120.0, help="seconds past the budget before runs are killed")
    p.add_argument("--batch-size", type=int, default=256, help="passed on; also sizes an epoch in steps")
    p.add_argument("shared", nargs=argparse.REMAINDER, help="after --: train.py arguments for every variant")
    args = p.parse_args()
    shared = [a for a in args.shared if a != "--"] + ["--batch-size", str(args.batch_size)]
    variants = {version: shlex.split(extra) for version, extra in args.variant}

    started = time.monotonic()
    calib = {f"calib-{v}": _command(args.registry, args.out / f"calib-{v}", "student-calib", v,
                                    args.calibrate_epochs, shared, extra)
             for v, extra in variants.items()}  # fmt: skip
    logs = args.logs or args.out / "logs"
    codes = _run_all(calib, logs, started + args.calibrate_seconds)
    if any(codes.values()):
        print(f"calibration failed or ran past {args.calibrate_seconds:g} s: {codes}; see {logs}", flush=True)
        return 1
    rates = {v: _rate(args.registry, "student-calib", v, logs / f"calib-{v}.log") for v in variants}
    epochs = epochs_within(min(rates.values()), args.budget_seconds, args.safety, args.batch_size, args.max_epochs)
    print(json.dumps({"steps_per_second": rates, "epochs": epochs, "calibration_s": time.monotonic() - started}),
          flush=True)  # fmt: skip
    if epochs < args.min_epochs:  # a run that cannot finish in the budget would only be killed
        print(f"too slow: {epochs} epochs fit the budget, fewer than --min-epochs {args.min_epochs}", flush=True)
        return 1

    real = {f"student-{v}": _command(args.registry, args.out / f"student-{v}", "student", v, epochs, shared, extra)
            for v, extra in variants.items()}  # fmt: skip
    codes = _run_all(real, logs, time.monotonic() + args.budget_seconds + args.kill_after)
    for v in variants:
        manifest = args.registry / "student" / v / "manifest.json"
        if manifest.is_file():
            m = json.loads(manifest.read_text())
            print(json.dumps({"ref": f"student@{v}", "metrics": m["metrics"], "command": m["command"]}), flush=True)
    return 0 if not any(codes.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
