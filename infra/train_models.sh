#!/usr/bin/env bash
# Train every shipped model from scratch into model_store/artifacts (the commands recorded in the manifests).
#
#   bash infra/train_models.sh [distill|quality|all]   (default all; the two chains run side by side)
#
# Each run checkpoints under runs/ and resumes from there when started again, so an interrupted
# run loses at most one checkpoint interval. Logs: runs/train-<chain>.log.
# Measured on the 2-core CPU machine: about 80 minutes for both chains together.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=$(bash infra/bootstrap.sh | tail -n 1)
what="${1:-all}"
threads="${TRAIN_THREADS:-1}"  # per chain: the two chains share the 2 cores
mkdir -p runs

distill() {
  local t=(-m model_store.distill.train)
  "$py" "${t[@]}" teachers --out runs/distill/teachers --epochs 2 --threads "$threads" --resume
  "$py" "${t[@]}" router --out runs/distill/router --epochs 1 --threads "$threads" --resume
  "$py" "${t[@]}" student --out runs/distill/student --epochs 2 --threads "$threads" --resume
  # the CORAL ablation: the same recipe with gamma = 0
  "$py" "${t[@]}" student --name student-gamma0 --gamma 0 --out runs/distill/student-gamma0 --epochs 2 \
    --threads "$threads" --resume
}

quality() {
  local q=(-m model_store.quality.train)
  "$py" "${q[@]}" background --threads "$threads" --overwrite --resume
  "$py" "${q[@]}" position --threads "$threads" --overwrite --resume
  "$py" "${q[@]}" visual --threads "$threads" --overwrite --resume
  "$py" "${q[@]}" visual --no-twin --threads "$threads" --overwrite --resume  # the twin ablation
}

case "$what" in
  distill) distill > runs/train-distill.log 2>&1 ;;
  quality) quality > runs/train-quality.log 2>&1 ;;
  all)
    distill > runs/train-distill.log 2>&1 & d=$!
    quality > runs/train-quality.log 2>&1 & q=$!
    rc=0
    wait "$d" || rc=1
    wait "$q" || rc=1
    exit "$rc"
    ;;
  *) echo "usage: $0 [distill|quality|all]" >&2; exit 2 ;;
esac
