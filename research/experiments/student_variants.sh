#!/usr/bin/env bash
# Issue 3 experiment: can a warm restart of student@3 (the CPU recipe; rebuilt by
# 'bash infra/train_models.sh cpu-students') close the gap to routing?
#
#   bash research/experiments/student_variants.sh      (about 5.5 hours on the 2-core CPU)
#
# Copies the shipped registry to runs/exp-reg (the shipped artifacts stay untouched), trains
# 2-epoch variants from student@3 into it (two at a time, one torch thread each), and compares
# them with student@3 and the routed teachers on VALIDATION queries: the 6,000 held-out items of
# the train split, never the test split. Results: runs/bench/variants-<style>/results.md.
# Variants 10-12 change the student's capacity or inputs instead of the schedule: its trunk at
# 96 px (same weights and bytes, 2.5x the compute), a residual MLP head beside the projection
# (+0.79M parameters), and within-category input mixup.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
if [ ! -f model_store/artifacts/student/3/manifest.json ]; then
  echo "student@3 is not in model_store/artifacts (no longer shipped): run 'bash infra/train_models.sh cpu-students' first" >&2
  exit 2
fi
py=$(bash infra/bootstrap.sh | tail -n 1)
reg=runs/exp-reg
rm -rf "$reg" && mkdir -p runs/bench && cp -r model_store/artifacts "$reg"

variant() {  # variant <version> <extra train.py arguments...>
  local version="$1"; shift
  "$py" -m model_store.distill.train student --registry "$reg" --out "runs/distill/variant-$version" \
    --epochs 2 --lr 3e-4 --head-lr 1e-3 --init-version 3 --version "$version" --teacher-version 2 \
    --threads 1 --resume "$@" > "runs/train-variant-$version.log" 2>&1
}

variant 4 --gamma 0.1 & a=$!
variant 5 --gamma 0.1 --plain-fraction 0.65 & b=$!
wait "$a"; wait "$b"
variant 6 --gamma 3 & a=$!
variant 7 --coral-layers 6 10 14 15 & b=$!
wait "$a"; wait "$b"
# more of the hard clothing classes (T-shirt, pullover, coat x1.5, shirt x2) / all clothing x2
variant 8 --class-weights 1.5 1 1.5 1 1.5 1 2 1 1 1 & a=$!
variant 9 --class-weights 2 2 2 2 2 1 2 1 1 1 & b=$!
wait "$a"; wait "$b"
variant 10 --work-size 96 & a=$!
variant 11 --head-hidden 512 & b=$!
wait "$a"; wait "$b"
variant 12 --mixup-alpha 1.0
# 13-14: the unchanged recipe under two other seeds (other batches, renderings and teacher draws):
# a control for the rows above, and the spread between training runs
variant 13 --seed 1 & a=$!
variant 14 --seed 2 & b=$!
wait "$a"; wait "$b"
# 15: mild random shift / zoom / turn of the inputs (teacher and student see the same view)
variant 15 --affine-jitter 0.08 --threads 2
# 16: the target is the teachers' mean vector over the image and its mirror image
variant 16 --mirror-targets --threads 2

for style in plain seller; do
  "$py" -m model_store.distill.benchmark --registry "$reg" --queries-from val --queries 6000 --style "$style" \
    --students student@3 student@4 student@5 student@6 student@7 student@8 student@9 \
    student@10 student@11 student@12 student@13 student@14 student@15 student@16 --skip-baseline --threads 1 \
    --out "runs/bench/variants-$style" > "runs/bench-variants-$style.log" 2>&1 &
done
wait
cat runs/bench/variants-plain/results.md runs/bench/variants-seller/results.md
