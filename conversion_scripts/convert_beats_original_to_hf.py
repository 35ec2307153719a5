"""Convert an original BEATs checkpoint (pre-trained, AudioSet fine-tuned or acoustic tokenizer) to audiozoo.

    python conversion_scripts/convert_beats_original_to_hf.py \
        --checkpoint_path BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt \
        --pytorch_dump_folder_path beats-iter3-plus-as2m-cpt2 [--push_to_hub org/name] [--fold_weight_norm]

Same as `audiozoo convert beats ...`; the work is done by audiozoo.conversion.beats.
"""

import argparse

from audiozoo.cli import add_beats_conversion_arguments
from audiozoo.conversion.beats import convert_and_save

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_beats_conversion_arguments(parser)
    args = parser.parse_args()
    out = convert_and_save(
        args.checkpoint_path,
        args.pytorch_dump_folder_path,
        push_to_hub=args.push_to_hub,
        fold_weight_norm=args.fold_weight_norm,
    )
    print(f"converted {args.checkpoint_path} -> {out}")
