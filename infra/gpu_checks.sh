#!/usr/bin/env bash
# The GPU checks of issue 22, on a machine with an NVIDIA GPU, in under 10 minutes:
#   models only + pipeline (catalog bench pipeline: embedder-only, models-only and pipeline images/s, no Kafka)
#   and end to end (catalog bench stream: a local broker, a worker, Milvus Lite), each at two batch sizes,
#   all with --device cuda. Figures go to docs/bench/gpu-*.json (and the stream PNGs beside them).
#
# Usage: bash infra/gpu_checks.sh            (batch sizes 64 and 256)
#        GPU_BATCHES="128 512" bash infra/gpu_checks.sh
# Needs a bootstrapped checkout (infra/bootstrap.sh is run first; it is quick when done) and a CUDA build of torch.
# Every step has its own time limit, and the limits add up to less than 10 minutes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=$(bash infra/bootstrap.sh | tail -n 1)
out=docs/bench
batches=${GPU_BATCHES:-"64 256"}
mkdir -p "$out"

# fail at once, and clearly, where there is no usable GPU
"$py" - "$out/gpu-machine.json" <<'EOF'
import json, platform, sys
import torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_checks: torch.cuda.is_available() is False (torch {torch.__version__}, "
             f"built for CUDA {torch.version.cuda}): no NVIDIA GPU or driver here; nothing was measured")
props = torch.cuda.get_device_properties(0)
facts = {"gpu": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
         "capability": f"{props.major}.{props.minor}", "torch": torch.__version__, "cuda": torch.version.cuda,
         "cpus": __import__("os").cpu_count(), "platform": platform.platform()}
open(sys.argv[1], "w").write(json.dumps(facts, indent=2) + "\n")
print("gpu_checks:", facts)
EOF

started=$SECONDS
for b in $batches; do
  echo "gpu_checks: models only + pipeline, batch $b" >&2
  CATALOG_DEVICE=cuda CATALOG_BATCH_MAX_SIZE=$b timeout 100 \
    "$py" -m streams.cli bench pipeline --fresh-gallery --images $((b * 32)) --out "$out/gpu-pipeline-b$b.json"
done
for b in $batches; do
  echo "gpu_checks: end to end (catalog bench stream), batch $b" >&2
  timeout 190 "$py" -m streams.cli bench stream --device cuda --batch-size "$b" --events 5000 --gallery 10000 \
    --models-only-images $((b * 16)) --stall 60 --timeout 180 --out "$out/gpu-stream-b$b.json"
done
echo "gpu_checks: done in $((SECONDS - started)) s; figures in $out/gpu-*.json" >&2
