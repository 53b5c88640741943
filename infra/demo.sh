#!/usr/bin/env bash
# Command (1): set everything up and run the main job on embedded defaults, then print its summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=$(bash infra/bootstrap.sh | tail -n 1)
exec "$py" -m infra.demo "$@"
