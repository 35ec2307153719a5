#!/usr/bin/env bash
# Train the bundled default model from scratch: a small BYOL-A v1 network (conv 32 channels, 256-d embedding,
# about 0.15 M parameters, 0.6 MB) classifying drum hits.
#
#   bash examples/drums/train.sh DATA [OUTPUT_DIR] [--install]
#
# DATA is any set of labelled clips (see examples/drums/README.md for the drums set the default model was trained
# on and where its recordings come from):
#   - a folder with one sub-folder of clips per label (DATA/kick/*.wav, DATA/snare/*.wav, ...): split at random,
#     stratified by label;
#   - a CSV/TSV manifest, file,label[,split][,group] with paths relative to it: a `group` column (e.g. the drum
#     kit) keeps whole groups together, so the test groups are never seen in training;
#   - a folder holding such a manifest as details.csv (the drums set's layout: split by kit, column `group`).
# Clips at another sampling rate than 16 kHz are resampled while loading (soxr).
# With --install the result replaces the package's default model (src/audiozoo/default_model).
set -euo pipefail
if [[ $# -lt 1 || "$1" == -* ]]; then
    echo "usage: bash examples/drums/train.sh DATA [OUTPUT_DIR] [--install]" >&2
    echo "  DATA: a folder with one sub-folder of clips per label, a CSV/TSV manifest (file,label[,split][,group])," >&2
    echo "        or a folder holding such a manifest as details.csv; see examples/drums/README.md" >&2
    exit 2
fi
if [[ ! -e "$1" ]]; then
    echo "train.sh: $1 not found" >&2
    exit 2
fi
DATA="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"  # absolute: the script runs from the repository root
OUT="${2:-}"
if [[ -n "$OUT" && "$OUT" != /* ]]; then OUT="$PWD/$OUT"; fi  # as given, from where it was called
OUT="${OUT:-runs/drums}"  # by default under the repository root
cd "$(dirname "$0")/../.."
if [[ -d "$DATA" && -f "$DATA/details.csv" ]]; then
    DATA="$DATA/details.csv"
fi
audiozoo finetune --data "$DATA" --config examples/drums/config.json --output_dir "$OUT" \
    --clip_seconds 2 --batch_size 16 --lr 1e-3 --weight_decay 0.01 --warmup_steps 20 --scheduler cosine \
    --epochs 60 --patience 20 --gain_db 6 --time_masks 1 --time_mask_width 20 --frequency_masks 1 \
    --frequency_mask_width 8 --seed 42 --resample --cpu
if [[ "${3:-}" == "--install" ]]; then
    python examples/drums/install_default_model.py "$OUT"
fi
