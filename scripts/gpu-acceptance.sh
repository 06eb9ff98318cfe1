#!/usr/bin/env bash
# GPU acceptance of sislab (issue 19) on a machine with one CUDA GPU, in under 8 minutes: every
# method 20 iterations through the sweep path with 1 worker in fp32 and bf16, 2 workers sharing
# the GPU (gloo), `sislab bench train` for SPADE and SC-GAN, and a profiled step per method
# (no host-device copies or host syncs beyond the batch). Prints one Markdown table; exit 1 when
# a row failed. From a fresh clone:
#   make venv && scripts/gpu-acceptance.sh [--out table.md]
# Without a GPU, `scripts/gpu-acceptance.sh --device cpu` runs the same table tiny (64 px,
# 2 iterations, SPADE and OASIS). See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PYTHON" ]; then
  echo "no $PYTHON: run 'make venv' first (or set PYTHON)" >&2
  exit 2
fi
# The 8-minute budget, enforced: a hang is a failure, not a wait.
exec timeout "${SISLAB_ACCEPTANCE_TIMEOUT_S:-480}" "$PYTHON" scripts/gpu_acceptance.py "$@"
