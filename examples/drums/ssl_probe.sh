#!/usr/bin/env bash
# Self-supervised pre-training helps: BYOL-A on the training clips (labels unused, test clips never seen),
# then the same linear probe on the SSL encoder and on the random-init encoder it started from.
#
#   bash examples/drums/ssl_probe.sh DATA [OUTPUT_DIR]
#
# DATA as for train.sh: a folder with one sub-folder of clips per label, a CSV/TSV manifest
# (file,label[,split][,group]), or a folder holding such a manifest as details.csv (the drums set, split by kit).
# A label folder is written out as OUTPUT_DIR/manifest.csv first, so that pre-training and the probe split the
# clips the same way.
set -euo pipefail
if [[ $# -lt 1 || "$1" == -* ]]; then
    echo "usage: bash examples/drums/ssl_probe.sh DATA [OUTPUT_DIR]" >&2
    echo "  DATA: a folder with one sub-folder of clips per label, a CSV/TSV manifest (file,label[,split][,group])," >&2
    echo "        or a folder holding such a manifest as details.csv; see examples/drums/README.md" >&2
    exit 2
fi
if [[ ! -e "$1" ]]; then
    echo "ssl_probe.sh: $1 not found" >&2
    exit 2
fi
DATA="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"  # absolute: the script runs from the repository root
OUT="${2:-}"
if [[ -n "$OUT" && "$OUT" != /* ]]; then OUT="$PWD/$OUT"; fi  # as given, from where it was called
OUT="${OUT:-runs/drums_ssl}"  # by default under the repository root
cd "$(dirname "$0")/../.."
if [[ -d "$DATA" && -f "$DATA/details.csv" ]]; then
    MANIFEST="$DATA/details.csv"
elif [[ -d "$DATA" ]]; then
    mkdir -p "$OUT"
    MANIFEST="$OUT/manifest.csv"
    python - "$DATA" "$MANIFEST" <<'PY'
import csv
import sys
from pathlib import Path

from audiozoo.training.data import examples_from_folder

folder, manifest = Path(sys.argv[1]), Path(sys.argv[2])
with open(manifest, "w", newline="", encoding="utf-8") as handle:
    writer = csv.writer(handle)
    writer.writerow(["file", "label"])
    for example in examples_from_folder(folder):
        writer.writerow([str(example.path.resolve()), example.labels[0]])
PY
else
    MANIFEST="$DATA"
fi
COMMON=(--data "$MANIFEST" --train_split_only --config examples/drums/ssl_config.json --batch_size 32
        --lr 3e-4 --seed 42 --resample --cpu --checkpoint_every 1000)
# the starting point, saved untrained (0 steps): same seed, same config, same normalisation statistics
audiozoo pretrain byol_a "${COMMON[@]}" --max_steps 0 --output_dir "$OUT/random_init"
audiozoo pretrain byol_a "${COMMON[@]}" --max_steps 150 --output_dir "$OUT/byol_a"
for model in random_init byol_a; do
    echo "== probe on $model"
    audiozoo probe --model "$OUT/$model" --data "$MANIFEST" --output "$OUT/$model/probe.json"
done
