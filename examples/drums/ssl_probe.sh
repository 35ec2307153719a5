#!/usr/bin/env bash
# Self-supervised pre-training helps: BYOL-A on the drums' training clips (labels unused, test kits never seen),
# then the same linear probe on the SSL encoder and on the random-init encoder it started from.
#
#   bash examples/drums/ssl_probe.sh [DATA_DIR] [OUTPUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${1:-../shared/data/drums}"
OUT="${2:-runs/drums_ssl}"
COMMON=(--data "$DATA/details.csv" --train_split_only --config examples/drums/ssl_config.json --batch_size 32
        --lr 3e-4 --seed 42 --cpu --checkpoint_every 1000)
# the starting point, saved untrained (0 steps): same seed, same config, same normalisation statistics
audiozoo pretrain byol_a "${COMMON[@]}" --max_steps 0 --output_dir "$OUT/random_init"
audiozoo pretrain byol_a "${COMMON[@]}" --max_steps 150 --output_dir "$OUT/byol_a"
for model in random_init byol_a; do
    echo "== probe on $model"
    audiozoo probe --model "$OUT/$model" --data "$DATA/details.csv" --output "$OUT/$model/probe.json"
done
