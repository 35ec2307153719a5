"""Convert an original BEATs checkpoint (pre-trained, AudioSet fine-tuned or acoustic tokenizer) to audiozoo.

    python conversion_scripts/convert_beats_original_to_hf.py \
        --checkpoint_path BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt \
        --pytorch_dump_folder_path beats-iter3-plus-as2m-cpt2 [--push_to_hub org/name] [--fold_weight_norm]

A thin wrapper of `audiozoo convert beats ...` (same arguments; the work is in audiozoo.conversion.beats).
"""

import sys

from audiozoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", "beats", *sys.argv[1:]]))
