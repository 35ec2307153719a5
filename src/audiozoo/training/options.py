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


# --------------------------------------------------------------------------------------------------------------
# `audiozoo pretrain <recipe>`: each loop's settings and flags (the loops live in pretrain_<recipe>.py and import
# these, so that the command line builds every recipe's parser without importing torch)


@dataclass
class PretrainEatArgs(RunOptions):
    """Everything an EAT pre-training run needs; defaults are EAT-base's recipe (per process: batch 12)."""

    data: str  # folder of audio files (any depth), CSV/TSV manifest (labels ignored) or datasets folder
    output_dir: str
    config: str | None = None  # config.json of a new encoder (model_type audiozoo-eat)
    model: str | None = None  # or an EAT folder / Hub id to continue from
    clip_seconds: float = 10.0
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 12
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_steps: int = 0  # the original: 53,333 of 400k updates
    max_grad_norm: float = 4.0
    clone_batch: int = 16
    mask_ratio: float = 0.8
    mask_prob_adjust: float = 0.07
    block_size: int = 5
    ema_start: float = 0.9998
    ema_end: float = 0.99999
    ema_anneal_steps: int = 100_000
    average_top_k_layers: int | None = None  # None: all blocks (EAT-base: 12 of 12)
    decoder_dim: int | None = None  # None: the encoder width (EAT-base: 768)
    decoder_kernel: int = 3
    decoder_layers: int = 6
    decoder_groups: int = 16
    mask_noise_std: float = 0.01
    frame_loss_weight: float = 1.0
    utterance_loss_weight: float = 1.0


def add_pretrain_eat_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `audiozoo pretrain eat` (defaults: EAT-base's recipe, per process)."""
    defaults = PretrainEatArgs(data="", output_dir="")
    parser.add_argument("--data", required=True, help=UNLABELLED_DATA_HELP)
    parser.add_argument("--output_dir", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="config.json of a new encoder (model_type audiozoo-eat)")
    source.add_argument("--model", help="EAT folder or Hub id to continue pre-training")
    add_typed_flags(parser, (
        *SCHEDULE_FLAGS,
        ("clone_batch", int, "masks per clip (multi-mask)"), ("mask_ratio", float, None),
        ("mask_prob_adjust", float, "extra block centres (data2vec 2.0)"), ("block_size", int, "mask block side"),
        ("ema_start", float, None), ("ema_end", float, None), ("ema_anneal_steps", int, None),
        ("average_top_k_layers", int, "teacher blocks averaged into the targets (default: all)"),
        ("decoder_dim", int, "default: the encoder width"), ("decoder_kernel", int, None),
        ("decoder_layers", int, None), ("decoder_groups", int, None), ("mask_noise_std", float, None),
        ("frame_loss_weight", float, None), ("utterance_loss_weight", float, None),
        *RUN_FLAGS,
    ), defaults)
    add_pretrain_switches(parser)


@dataclass
class PretrainByolAArgs(RunOptions):
    """Everything a BYOL-A pre-training run needs; the CLI fills it from its flags."""

    data: str  # manifest, datasets folder, or a folder of audio (searched recursively); labels are ignored
    output_dir: str
    config: str | None = None  # config.json of a new encoder (model_type audiozoo-byol-a)
    model: str | None = None  # or a BYOL-A folder to continue from (its norm statistics are kept)
    version: int | None = None  # augmentation chain: 1 (mixup, crop) or 2 (+ fader); default: the encoder's
    train_split_only: bool = False  # only the clips `split_examples` puts in train (probe test clips stay unseen)
    clip_seconds: float = 0.95  # the original unit: 15200 samples -> 96 frames
    epochs: int = 100
    max_steps: int | None = None  # optimiser steps; overrides epochs
    batch_size: int = 256
    lr: float | None = None  # default 3e-4 (v1) / 1e-4 (v2)
    ema_decay: float = 0.99
    projection_hidden_size: int = 4096
    projection_size: int = 256
    mixup_ratio: float | None = None  # default 0.4 (v1) / 0.2 (v2)
    memory_size: int | None = None  # mixup memory bank; default 2048 (v1) / 512 (v2)
    norm_stats_clips: int = 10000  # clips drawn for the norm statistics of a new encoder (the original's cap)


def add_pretrain_byol_a_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `audiozoo pretrain byol_a`."""
    defaults = PretrainByolAArgs(data="", output_dir="")
    parser.add_argument("--data", required=True, help="CSV/TSV manifest, a datasets folder (save_to_disk), or a "
                        "folder of audio files (searched recursively); labels are ignored")
    parser.add_argument("--output_dir", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="config.json of a new encoder (model_type audiozoo-byol-a)")
    source.add_argument("--model", help="BYOL-A folder to continue from (its norm statistics are kept)")
    parser.add_argument("--version", type=int, choices=(1, 2), default=None,
                        help="augmentation chain: 1 mixup+crop, 2 adds the linear fader (default: the encoder's)")
    parser.add_argument("--train_split_only", action="store_true",
                        help="use only the train split that audiozoo probe/finetune would draw with the same seed")
    for name, kind in (("clip_seconds", float), ("epochs", int), ("max_steps", int), ("batch_size", int),
                       ("lr", float), ("ema_decay", float), ("projection_hidden_size", int),
                       ("projection_size", int), ("mixup_ratio", float), ("memory_size", int),
                       ("norm_stats_clips", int), ("gradient_accumulation_steps", int), ("checkpoint_every", int),
                       ("seed", int)):
        parser.add_argument(f"--{name}", type=kind, default=getattr(defaults, name))
    parser.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--resume", default=None, help="a checkpoint folder, or 'latest' in OUTPUT_DIR/checkpoints")
    parser.add_argument("--resample", action="store_true", help="resample files at other rates (soxr)")
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument("--log_with", default=None, help="an accelerate tracker (tensorboard, wandb, ...)")


@dataclass(kw_only=True)
class BeatsRunOptions(RunOptions):
    """Data, schedule and optimiser settings both BEATs loops share (keyword-only, after each loop's own fields)."""

    clip_seconds: float = 10.0
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0
    max_grad_norm: float = 1.0


def add_beats_run_arguments(parser: argparse.ArgumentParser, defaults: BeatsRunOptions) -> None:
    """Data, schedule, precision and checkpoint flags both commands share."""
    parser.add_argument("--data", required=True, help=UNLABELLED_DATA_HELP)
    parser.add_argument("--output_dir", required=True)
    add_typed_flags(parser, (*SCHEDULE_FLAGS, *RUN_FLAGS), defaults)
    add_pretrain_switches(parser)


@dataclass
class PretrainBeatsArgs(BeatsRunOptions):
    """Everything a masked-patch-prediction run needs (per process: batch_size clips per micro-batch)."""

    data: str  # folder of audio files (any depth), CSV/TSV manifest (labels ignored) or datasets folder
    output_dir: str
    config: str | None = None  # config.json of a new encoder (model_type audiozoo-beats)
    model: str | None = None  # or a BEATs folder / Hub id to continue from
    tokenizer: str | None = None  # None: random projection (iteration 1); a tokenizer folder; a saved .safetensors
    codebook_size: int = 1024  # random projection only
    codebook_dim: int = 256  # random projection only
    tokenizer_seed: int | None = None  # random projection only (None: `seed`)
    mask_ratio: float = 0.75
    predictor_layers: int = 3
    label_smoothing: float = 0.0


def add_pretrain_beats_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `audiozoo pretrain beats` (masked patch prediction)."""
    defaults = PretrainBeatsArgs(data="", output_dir="")
    add_beats_run_arguments(parser, defaults)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="config.json of a new encoder (model_type audiozoo-beats)")
    source.add_argument("--model", help="BEATs folder or Hub id to continue pre-training")
    parser.add_argument("--tokenizer", help="BEATs tokenizer folder (default: a random-projection tokenizer, "
                                            "iteration 1) or a saved random_projection_tokenizer.safetensors")
    add_typed_flags(parser, (
        ("codebook_size", int, "random-projection tokenizer only"), ("codebook_dim", int, "random projection only"),
        ("tokenizer_seed", int, "random projection only (default: --seed)"), ("mask_ratio", float, None),
        ("predictor_layers", int, "Transformer layers of the label predictor"), ("label_smoothing", float, None),
    ), defaults)


@dataclass
class TrainTokenizerArgs(BeatsRunOptions):
    """Everything a tokenizer-distillation run needs (per process: batch_size clips per micro-batch)."""

    data: str  # folder of audio files (any depth), CSV/TSV manifest (labels ignored) or datasets folder
    output_dir: str
    teacher: str  # BEATs folder / Hub id (an SSL model or a fine-tuned one)
    config: str | None = None  # config.json of a new tokenizer (model_type audiozoo-beats-tokenizer)
    model: str | None = None  # or a tokenizer folder to continue from (neither: the teacher's architecture)
    codebook_size: int | None = None  # new tokenizer only (None: the config's, else 1024)
    codebook_dim: int | None = None  # new tokenizer only (None: the config's, else 256)
    decoder_layers: int = 3
    codebook_decay: float = 0.99
    commitment_weight: float = 1.0
    kmeans_iterations: int = 10


def add_beats_tokenizer_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `audiozoo pretrain beats_tokenizer` (distillation from a BEATs teacher)."""
    defaults = TrainTokenizerArgs(data="", output_dir="", teacher="")
    add_beats_run_arguments(parser, defaults)
    parser.add_argument("--teacher", required=True, help="BEATs folder or Hub id (pre-trained or fine-tuned)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--config", help="config.json of a new tokenizer (default: the teacher's architecture)")
    source.add_argument("--model", help="tokenizer folder to continue training")
    add_typed_flags(parser, (
        ("codebook_size", int, "new tokenizer (default 1024)"), ("codebook_dim", int, "new tokenizer (default 256)"),
        ("decoder_layers", int, None), ("codebook_decay", float, "EMA decay of the codebook"),
        ("commitment_weight", float, None), ("kmeans_iterations", int, "k-means start of a new codebook"),
    ), defaults)


# `audiozoo pretrain <recipe>`: (recipe, argument adder, loop module in audiozoo.training, its entry point, help);
# the command line imports the loop's module only to run it
PRETRAIN_RECIPES = (
    ("eat", add_pretrain_eat_arguments, "pretrain_eat", "main",
     "EAT's utterance-frame objective (EMA teacher, inverse block masks, CNN decoder)"),
    ("byol_a", add_pretrain_byol_a_arguments, "pretrain_byol_a", "main",
     "BYOL-A (v1/v2 augmentation chains, projector/predictor, EMA target) on unlabelled audio"),
    ("beats", add_pretrain_beats_arguments, "pretrain_beats", "main",
     "BEATs masked patch prediction of frozen-tokenizer labels (random projection for iteration 1)"),
    ("beats_tokenizer", add_beats_tokenizer_arguments, "pretrain_beats_tokenizer", "main_tokenizer",
     "BEATs acoustic tokenizer trained by distillation from a BEATs teacher"),
)


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
    "PRETRAIN_RECIPES",
    "RUN_FLAGS",
    "SCHEDULE_FLAGS",
    "UNLABELLED_DATA_HELP",
    "BeatsRunOptions",
    "DistillArgs",
    "FinetuneArgs",
    "PretrainBeatsArgs",
    "PretrainByolAArgs",
    "PretrainEatArgs",
    "RunOptions",
    "TrainTokenizerArgs",
    "add_beats_run_arguments",
    "add_beats_tokenizer_arguments",
    "add_distill_arguments",
    "add_finetune_arguments",
    "add_pretrain_beats_arguments",
    "add_pretrain_byol_a_arguments",
    "add_pretrain_eat_arguments",
    "add_pretrain_switches",
    "add_typed_flags",
    "options_from",
    "summary_line",
]
