"""Convert BYOL-A weights (nttcslab/byol-a v1 AudioNTT2020 / v2 AudioNTT2022, or a training checkpoint).

    python conversion_scripts/convert_byol_a_original_to_hf.py --checkpoint_path AudioNTT2020-BYOLA-64x96d2048.pth \
        --pytorch_dump_folder_path byol-a-v1-d2048 [--norm_stats MEAN STD | --norm_stats PRESET] [--push_to_hub REPO]

A thin wrapper of `audiozoo convert byol_a ...` (same arguments; the work is in audiozoo.conversion.byol_a).
"""

import sys

from audiozoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", "byol_a", *sys.argv[1:]]))
