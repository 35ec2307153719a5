#!/usr/bin/env bash
# Train the bundled default model from scratch: a small BYOL-A v1 network (conv 32 channels, 256-d embedding,
# about 0.15 M parameters, 0.6 MB) classifying drum hits, on the real clips of ../shared/data/drums.
#
#   bash examples/drums/train.sh [DATA_DIR] [OUTPUT_DIR]
#
# The split is by drum kit (details.csv column `group`, seed 42): the test kits are never seen in training.
# With --install the result replaces the package's default model (src/audiozoo/default_model).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${1:-../shared/data/drums}"
OUT="${2:-runs/drums}"
audiozoo finetune --data "$DATA/details.csv" --config examples/drums/config.json --output_dir "$OUT" \
    --clip_seconds 2 --batch_size 16 --lr 1e-3 --weight_decay 0.01 --warmup_steps 20 --scheduler cosine \
    --epochs 60 --patience 20 --gain_db 6 --time_masks 1 --time_mask_width 20 --frequency_masks 1 \
    --frequency_mask_width 8 --seed 42 --cpu
if [[ "${3:-}" == "--install" ]]; then
    python examples/drums/install_default_model.py "$OUT"
fi
