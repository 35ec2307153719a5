#!/usr/bin/env bash
# One GPU script: parity, eager vs SDPA, throughput, sound-event detection and peak memory of every family.
#
#   bash bench/gpu.sh                      # on cuda (cuda:0), full run: < 8 min on one GPU (--time-budget 420 s guard)
#   bash bench/gpu.sh --device cuda:1 --output /tmp/gpu_bench
#   bash bench/gpu.sh --device cpu --dry-run --output /tmp/dry   # tiny configs, every code path, < 1 min on a CPU
#   bash bench/gpu.sh --families ast,beats --sections parity,throughput --modes fp32,bf16
#
# Run it once from a checkout with the package installed (pip install -e .) and the venv active; it needs no
# network and no weights (released sizes are built with random weights; parity uses tests/fixtures/parity).
# Writes gpu_bench.json (environment, every section's rows) and gpu_bench.md (the tables, also printed) to
# --output (default out/gpu_bench in the repo). Exit status: 0 all ran units passed, 1 a parity check failed or
# a unit raised, 2 the device is not there (one line). Everything else: python bench/bench_gpu.py --help and the
# docstring of bench/bench_gpu.py (sections, conventions, the time budget and its per-section estimates).
# PYTHON=... picks the interpreter (default: python).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python}" "$here/bench_gpu.py" "$@"
