"""Settings of the training loops, the command-line flags that fill them and the glue of each `main` (settings
from parsed flags, the closing line). Torch-free: the command line parses its arguments before any model code is
imported; the loops import these, never the command line."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TypeVar

Options = TypeVar("Options")


@dataclass(kw_only=True)
class RunOptions:
    """Run settings every loop shares (keyword-only, so each loop's own fields keep their order)."""

    gradient_accumulation_steps: int = 1
    mixed_precision: str = "no"  # no | fp16 | bf16
    checkpoint_every: int = 0  # optimiser steps between checkpoints (0: every epoch)
    resume: str | None = None  # a checkpoint folder or "latest"
    stop_after_steps: int | None = None  # end the run after this many steps (after checkpointing): for tests
    resample: bool = False  # resample files at other rates instead of refusing them
    seed: int = 42
    cpu: bool = False
    log_with: str | None = None  # an accelerate tracker


@dataclass
class FinetuneArgs(RunOptions):
    """Everything a fine-tuning run needs; the CLI fills it from its flags."""

    data: str  # CSV/TSV manifest or a folder with one sub-folder per label
    output_dir: str
    model: str | None = None  # converted folder / Hub id to start from
    config: str | None = None  # or a config.json to train from scratch
    task: str | None = None  # single | multi | frame (default: multi if any clip has several labels, else single)
    events: str | None = None  # events TSV (filename, onset, offset, event_label) for frame targets
    labels: str | None = None  # text file, one class per line (default: the labels found in the data, sorted)
    clip_seconds: float = 10.0
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.01
    layer_decay: float = 1.0
    scheduler: str = "cosine"
    warmup_steps: int = 0
    mixup_alpha: float = 0.0
    gain_db: float = 0.0
    roll: bool = False
    time_masks: int = 0
    time_mask_width: int = 40
    frequency_masks: int = 0
    frequency_mask_width: int = 16
    balanced_sampler: bool = False
    early_stop_metric: str | None = None
    patience: int = 5


@dataclass
class DistillArgs(FinetuneArgs):
    pseudo_labels: str | None = None  # HDF5: filenames + strong_logits [N, C, T]
    teachers: tuple[str, ...] = ()  # or teacher model folders, run online
    distillation_loss_weight: float = 0.9


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = FinetuneArgs(data="", output_dir="")
    parser.add_argument("--data", required=True, help="CSV/TSV manifest (file,label[;label2][,split][,group]), a "
                        "datasets folder (save_to_disk; audio read undecoded) or a folder with one sub-folder per label")
    parser.add_argument("--output_dir", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="converted model folder or Hub id to start from")
    source.add_argument("--config", help="config.json of a new model (training from scratch)")
    parser.add_argument("--task", choices=("single", "multi", "frame"), default=None,
                        help="default: frame with --events, multi if a clip has several labels, else single")
    parser.add_argument("--events", default=None, help="events TSV (filename, onset, offset, event_label): frame targets")
    parser.add_argument("--labels", default=None, help="class list, one per line (default: the data's labels)")
    for name, kind in (("clip_seconds", float), ("epochs", int), ("max_steps", int), ("batch_size", int), ("lr", float),
                       ("weight_decay", float), ("layer_decay", float), ("warmup_steps", int),
                       ("gradient_accumulation_steps", int), ("mixup_alpha", float), ("gain_db", float),
                       ("time_masks", int), ("time_mask_width", int), ("frequency_masks", int),
                       ("frequency_mask_width", int), ("patience", int), ("checkpoint_every", int), ("seed", int)):
        parser.add_argument(f"--{name}", type=kind, default=getattr(defaults, name))
    parser.add_argument("--scheduler", choices=("cosine", "constant", "step"), default=defaults.scheduler)
    parser.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--roll", action="store_true", help="random circular shifts of the waveform")
    parser.add_argument("--balanced_sampler", action="store_true", help="class-balanced sampling (multi-label)")
    parser.add_argument("--early_stop_metric", default=None, help="default: accuracy / mAP / frame_micro_f1")
    parser.add_argument("--resume", default=None, help="a checkpoint folder, or 'latest' in OUTPUT_DIR/checkpoints")
    parser.add_argument("--resample", action="store_true", help="resample files at other rates (soxr) instead of "
                        "refusing them")
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--log_with", default=None, help="an accelerate tracker (tensorboard, wandb, ...)")


def add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    add_finetune_arguments(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pseudo_labels", help="HDF5 with filenames and strong_logits [N, C, T] (float16)")
    source.add_argument("--teachers", nargs="+", help="teacher frame-classifier folders, run online and averaged")
    parser.add_argument("--distillation_loss_weight", type=float, default=0.9)


# (name, type, help) of the flags the pre-training commands share, in their --help order: the schedule first, the
# run's bookkeeping last (EAT lists its own flags between them)
SCHEDULE_FLAGS = (
    ("clip_seconds", float, "window length (random crop of longer clips, zeros after shorter ones)"),
    ("epochs", int, None), ("max_steps", int, "optimiser steps (overrides epochs)"),
    ("batch_size", int, "clips per process and micro-batch"), ("lr", float, None), ("weight_decay", float, None),
    ("warmup_steps", int, None), ("max_grad_norm", float, None),
)
RUN_FLAGS = (
    ("gradient_accumulation_steps", int, None),
    ("checkpoint_every", int, "optimiser steps between checkpoints (0: every epoch)"),
    ("resume", str, "a checkpoint folder or 'latest'"), ("seed", int, None),
    ("log_with", str, "an accelerate tracker (tensorboard, wandb, ...)"),
)
UNLABELLED_DATA_HELP = "folder of audio files (any depth), CSV/TSV manifest (labels ignored) or datasets folder"


def add_typed_flags(parser: argparse.ArgumentParser, flags, defaults) -> None:
    """One `--name` per (name, type, help) of `flags`, its default the field of the settings dataclass `defaults`
    (so the command line and the dataclass cannot disagree)."""
    for name, kind, text in flags:
        parser.add_argument(f"--{name}", type=kind, default=getattr(defaults, name), help=text)


def add_pretrain_switches(parser: argparse.ArgumentParser) -> None:
    """--mixed_precision, --resample and --cpu, as the EAT and BEATs pre-training commands take them."""
    parser.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--resample", action="store_true", help="resample clips at other rates (soxr)")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is there")


def options_from(args: argparse.Namespace, kind: type[Options]) -> Options:
    """The settings dataclass `kind` from parsed flags; flags it has no field for (the CLI's handler, the
    sub-command's name) are left out."""
    return kind(**{key: value for key, value in vars(args).items() if key in kind.__dataclass_fields__})


def summary_line(result, counts: str, saved: str) -> str:
    """`<counts>[; last loss L]; <saved> in OUT; S s`: what a pre-training command prints when done (`result` has
    `losses` [(step, loss)], `output_dir` and `seconds`)."""
    last = f"; last loss {result.losses[-1][1]:.4f}" if result.losses else ""
    return f"{counts}{last}; {saved} in {result.output_dir}; {result.seconds:.1f} s"


__all__ = [
    "RUN_FLAGS",
    "SCHEDULE_FLAGS",
    "UNLABELLED_DATA_HELP",
    "DistillArgs",
    "FinetuneArgs",
    "RunOptions",
    "add_distill_arguments",
    "add_finetune_arguments",
    "add_pretrain_switches",
    "add_typed_flags",
    "options_from",
    "summary_line",
]
