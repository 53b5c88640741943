#!/usr/bin/env bash
# Issue 3 experiment: can a warm restart of the shipped student@3 close the gap to routing?
#
#   bash infra/experiments/student_variants.sh      (about 3 hours on the 2-core CPU)
#
# Copies the shipped registry to runs/exp-reg (the shipped artifacts stay untouched), trains six
# 2-epoch variants from student@3 into it (two at a time, one torch thread each), and compares
# them with student@3 and the routed teachers on VALIDATION queries: the 6,000 held-out items of
# the train split, never the test split. Results: runs/bench/variants-<style>/results.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
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

for style in plain seller; do
  "$py" -m model_store.distill.benchmark --registry "$reg" --queries-from val --queries 6000 --style "$style" \
    --students student@3 student@4 student@5 student@6 student@7 student@8 student@9 --skip-baseline --threads 1 \
    --out "runs/bench/variants-$style" > "runs/bench-variants-$style.log" 2>&1 &
done
wait
cat runs/bench/variants-plain/results.md runs/bench/variants-seller/results.md
