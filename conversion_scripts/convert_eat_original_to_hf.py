"""Convert an original EAT checkpoint (fairseq, pre-trained or fine-tuned) to audiozoo, without fairseq.

    python conversion_scripts/convert_eat_original_to_hf.py --checkpoint_path EAT-base_epoch30_ft_AS2M.pt \
        --pytorch_dump_folder_path eat-base-as2m [--dataset audioset|esc50|speechcommands] [--max_length N] \
        [--push_to_hub REPO]

A thin wrapper of `audiozoo convert eat ...` (same arguments; the work is in audiozoo.conversion.eat).
"""

import sys

from audiozoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", "eat", *sys.argv[1:]]))
