"""Convert an original AST checkpoint (YuanGongND/ast .pth) to audiozoo.

    python conversion_scripts/convert_ast_original_to_hf.py --checkpoint_path audioset_10_10_0.4593.pth \
        --pytorch_dump_folder_path ast-audioset-10-10 [--dataset audioset|esc50|speechcommands] \
        [--fstride F --tstride T] [--max_length N] [--num_attention_heads H] [--target_max_length N'] [--push_to_hub REPO]

A thin wrapper of `audiozoo convert ast ...` (same arguments; the work is in audiozoo.conversion.ast).
"""

import sys

from audiozoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", "ast", *sys.argv[1:]]))
