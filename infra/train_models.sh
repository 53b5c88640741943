#!/usr/bin/env bash
# Train every shipped model from scratch into model_store/artifacts (the commands recorded in the manifests).
#
#   bash infra/train_models.sh [distill|quality|all]   (default all; the two chains run side by side)
#   bash infra/train_models.sh cpu-students   (after distill: the earlier students @1-@3 and gamma0@1)
#
# About 9 hours on the 2-core CPU (the distill chain is the long one; TRAIN_DEVICE=cuda: under an
# hour). Each run checkpoints under runs/ and resumes from there when started again (a finished
# run is only re-registered), so an interruption loses at most one checkpoint interval.
# Logs: runs/train-<name>.log. Every run uses TRAIN_THREADS (default 1) torch threads; on the
# 2-core CPU machine two runs go side by side. Add --device cuda by TRAIN_DEVICE=cuda.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=$(bash infra/bootstrap.sh | tail -n 1)
what="${1:-all}"
threads="${TRAIN_THREADS:-1}"
device="${TRAIN_DEVICE:-cpu}"
mkdir -p runs

distill_run() {  # distill_run <log name> <train.py arguments...>
  local log="runs/train-$1.log"; shift
  "$py" -m model_store.distill.train "$@" --threads "$threads" --device "$device" --resume > "$log" 2>&1
}

distill() {
  distill_run teachers teachers --out runs/distill/teachers --epochs 2
  distill_run router router --out runs/distill/router --epochs 0.5
  # teachers@2 = teachers@1 + 2 epochs at a lower peak lr
  distill_run teachers-v2 teachers --out runs/distill/teachers-v2 --epochs 2 --lr 3e-4 --head-lr 1e-3 \
    --init-version 1 --version 2
  # the served student@17 and its CORAL ablation (the same command with gamma = 0) side by side:
  # 20 epochs from ImageNet at batch 256 (221 s of steps on an H200; about 6 hours on this CPU)
  distill_run student-v17 student --out runs/distill/student-v17 --epochs 20 --batch-size 256 --lr 3e-3 \
    --head-lr 9e-3 --version 17 --teacher-version 2 & s=$!
  distill_run student-gamma0-v2 student --name student-gamma0 --gamma 0 --out runs/distill/student-gamma0-v2 \
    --epochs 20 --batch-size 256 --lr 3e-3 --head-lr 9e-3 --version 2 --teacher-version 2 & g=$!
  wait "$s"
  wait "$g"
}

cpu_students() {  # the earlier CPU-sized students (not shipped; the experiments in docs/research/measured.md start from student@3)
  # student@1 and its ablation on teachers@1, 2 epochs each; then warm restarts on teachers@2
  distill_run student student --out runs/distill/student --epochs 2 & s=$!
  distill_run student-gamma0 student --name student-gamma0 --gamma 0 --out runs/distill/student-gamma0 \
    --epochs 2 & g=$!
  wait "$s"
  wait "$g"
  # student@2 = student@1 + 3 epochs on teachers@2; student@3 = student@2 + 3 more epochs
  distill_run student-v2 student --out runs/distill/student-v2 --epochs 3 --lr 5e-4 --head-lr 1.5e-3 \
    --init-version 1 --version 2 --teacher-version 2
  distill_run student-v3 student --out runs/distill/student-v3 --epochs 3 --lr 3e-4 --head-lr 1e-3 \
    --init-version 2 --version 3 --teacher-version 2
}

quality_run() {  # quality_run <log name> <train.py arguments...>
  local log="runs/train-$1.log"; shift
  "$py" -m model_store.quality.train "$@" --threads "$threads" --overwrite --resume > "$log" 2>&1
}

quality() {
  quality_run quality-background background --version 2  # colour_scenes generator, 5000 steps
  quality_run quality-background-v3 background --version 3 --generator textured_items
  quality_run quality-background-v4 background --version 4 --generator textured_items_round30  # served
  quality_run quality-position position
  quality_run quality-visual visual
  quality_run quality-visual-notwin visual --no-twin  # the twin ablation
}

case "$what" in
  distill) distill ;;
  quality) quality ;;
  cpu-students) cpu_students ;;
  all)
    distill & d=$!
    quality & q=$!
    rc=0
    wait "$d" || rc=1
    wait "$q" || rc=1
    exit "$rc"
    ;;
  *) echo "usage: $0 [distill|quality|all|cpu-students]" >&2; exit 2 ;;
esac
