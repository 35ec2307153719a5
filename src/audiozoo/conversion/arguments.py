"""Arguments of `audiozoo convert <family>` and conversion_scripts/convert_<family>_original_to_hf.py.

Torch-free, so the command line parses (and answers --help) without loading any model code. Each family's
arguments use the keyword names of its `convert_and_save`, so the command line passes them through unchanged.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

PRESET_DATASETS = ("audioset", "esc50", "speechcommands")
SED_MODEL_NAMES = ("BEATs", "ATST-F", "fpasst", "ASIT", "M2D", "frame_mn06", "frame_mn10")


def read_label_file(path: str) -> list[str]:
    """`--labels FILE`: one class name per line (blank lines ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read the label file {path}: {error.strerror or error}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


class NormStats(argparse.Action):
    """`--norm_stats MEAN STD` -> (mean, std) floats; `--norm_stats PRESET` -> the preset's name."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) == 2:
            try:
                values = (float(values[0]), float(values[1]))
            except ValueError:
                parser.error(f"{option_string} takes two numbers (MEAN STD) or one preset name, got {values}")
        elif len(values) == 1:
            values = values[0]
        else:
            parser.error(f"{option_string} takes two numbers (MEAN STD) or one preset name, got {len(values)} values")
        setattr(namespace, self.dest, values)


def _common(parser: argparse.ArgumentParser, checkpoint_help: str) -> None:
    parser.add_argument("--checkpoint_path", required=True, help=checkpoint_help)
    parser.add_argument("--pytorch_dump_folder_path", required=True, help="output folder")
    parser.add_argument("--push_to_hub", default=None, help="also upload the folder to this Hub repo id")


def add_beats_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, "original BEATs / tokenizer .pt file")
    parser.add_argument("--fold_weight_norm", action="store_true",
                        help="store the positional convolution as a plain weight")


def add_ast_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, "original AST .pth (DataParallel state dict)")
    parser.add_argument("--dataset", choices=PRESET_DATASETS, default="audioset",
                        help="recipe: normalisation stats, input length and labels")
    parser.add_argument("--fstride", dest="frequency_stride", type=int, default=None,
                        help="frequency stride (default: from the file name)")
    parser.add_argument("--tstride", dest="time_stride", type=int, default=None,
                        help="time stride (default: from the file name)")
    parser.add_argument("--max_length", type=int, default=None, help="input frames it was trained with")
    parser.add_argument("--num_attention_heads", type=int, default=None, help="default hidden_size // 64")
    parser.add_argument("--target_max_length", type=int, default=None,
                        help="re-grid the position table for this many input frames")


def add_eat_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, "original EAT fairseq .pt (pre-trained or fine-tuned)")
    parser.add_argument("--dataset", choices=PRESET_DATASETS, default="audioset",
                        help="normalisation statistics of the recipe")
    parser.add_argument("--max_length", type=int, default=None,
                        help="input frames (default: the checkpoint's target_length)")


def add_byol_a_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, "BYOL-A v1/v2 .pth or a training checkpoint")
    parser.add_argument("--norm_stats", nargs="+", action=NormStats, default=None, metavar="MEAN STD | PRESET",
                        help="log-mel mean and std of your dataset, or a preset name (v1_readme, v2_spcv2)")


def add_pretrained_sed_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, "released <Model>_{strong_1,weak,ssl}.pt or frame_mn{06,10}_strong_1.pt")
    parser.add_argument("--model_name", required=True, choices=SED_MODEL_NAMES, help="which model the file holds")
    parser.add_argument("--num_labels", type=int, default=None,
                        help="classes of the frame head (default: the file's; 447 if it has no heads)")
    parser.add_argument("--labels", type=read_label_file, default=None, help="text file with one class name per line")
    parser.add_argument("--head_type", choices=("linear", "attention"), default="linear",
                        help="head of the checkpoint (cannot be read from the weights; released files: linear)")
    parser.add_argument("--num_attention_heads", type=int, default=None, help="default: hidden size / 64")
    parser.add_argument("--width_mult", type=float, default=None, help="frame-MobileNet width (default: from shapes)")


# `audiozoo convert` sub-command (a conversion module, see families.CONVERSIONS) -> (help, argument adder)
CONVERSION_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "beats": ("BEATs, fine-tuned BEATs or a BEATs tokenizer", add_beats_arguments),
    "ast": ("Audio Spectrogram Transformer (.pth)", add_ast_arguments),
    "eat": ("EAT (fairseq checkpoint, no fairseq needed)", add_eat_arguments),
    "byol_a": ("BYOL-A v1 or v2 encoder", add_byol_a_arguments),
    "pretrained_sed": ("PretrainedSED frame models (BEATs, ATST-F, fpasst, ASIT, M2D, frame_mn06/10)",
                       add_pretrained_sed_arguments),
}

PASSED_SEPARATELY = ("checkpoint_path", "pytorch_dump_folder_path")


def conversion_options(family: str, args: argparse.Namespace) -> dict:
    """The keyword arguments of the family's `convert_and_save` among the parsed `args`: the family's own flags."""
    scratch = argparse.ArgumentParser(add_help=False)
    CONVERSION_COMMANDS[family][1](scratch)
    names = {action.dest for action in scratch._actions} - set(PASSED_SEPARATELY)
    return {name: getattr(args, name) for name in sorted(names)}


__all__ = ["CONVERSION_COMMANDS", "SED_MODEL_NAMES", "conversion_options"]
