"""Convert a PretrainedSED checkpoint (fschmid56/PretrainedSED release v0.0.1) to an audiozoo frame classifier.

    python conversion_scripts/convert_pretrained_sed_original_to_hf.py --checkpoint_path ATST-F_strong_1.pt \
        --model_name ATST-F --pytorch_dump_folder_path atst-frame-strong [--num_labels N] [--head_type attention] \
        [--push_to_hub REPO]

Model names: BEATs, ATST-F, fpasst, ASIT, M2D, frame_mn06, frame_mn10. A thin wrapper of
`audiozoo convert pretrained_sed ...` (same arguments; the work is in audiozoo.conversion.pretrained_sed).
"""

import sys

from audiozoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", "pretrained_sed", *sys.argv[1:]]))
