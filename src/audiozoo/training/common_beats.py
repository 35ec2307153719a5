"""What BEATs' two training loops share (`pretrain_beats`: masked patch prediction; `pretrain_beats_tokenizer`:
tokenizer training by distillation): their common settings and flags (defined torch-free in `options`), new BEATs
layer stacks with the original's deep-norm initialisation, the checks, the clip loader, the optimiser and the
accelerator (the loop of optimiser steps is `loop.train_steps`).

Assumptions of this module, as both loops make them (BEATs released no training code; see the loops' docstrings):
- new layers (a new encoder or tokenizer, the predictor and decoder stacks) get the original's deep-norm
  initialisation (xavier-normal q/k gain 1, v/out/fc1/fc2 gain (8L)^(-1/4));
- optimisation: AdamW betas (0.9, 0.98), weight decay 0.01 (not on biases / 1-D), cosine schedule after a
  linear warm-up, gradient clipping at norm `max_grad_norm`, lr 5e-4; the paper's step counts and batch sizes
  are the user's to set;
- data: fixed-length waveform windows (`ClipDataset`: random crop of longer clips, zeros after shorter ones,
  the zeros treated as audio as the original does without a padding mask).

Multi-process: with layerdrop > 0 some layers get no gradient in a step, so DDP is told to look for unused
parameters (`find_unused_parameters=True`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..models.beats import BeatsConfig
from ..models.beats.modeling_beats import BeatsEncoder
from .common import make_accelerator
from .data import ClipDataset, check_examples
from .optim import build_scheduler, parameter_groups
from .options import BeatsRunOptions
from .options import add_beats_run_arguments as add_run_arguments
from .pretrain_eat import pretraining_examples

# --------------------------------------------------------------------------------------------------------------
# new BEATs layer stacks


@torch.no_grad()
def deep_norm_init_(layers: nn.ModuleList) -> None:
    """The original's deep-norm initialisation of new layers: xavier-normal q/k (gain 1), v/out/fc1/fc2 (gain
    (8 L) ** -0.25)."""
    gain = (8 * len(layers)) ** -0.25
    for layer in layers:
        attention, feed_forward = layer.attention, layer.feed_forward
        for linear in (attention.q_proj, attention.k_proj):
            nn.init.xavier_normal_(linear.weight, gain=1.0)
        for linear in (attention.v_proj, attention.out_proj, feed_forward.fc1, feed_forward.fc2):
            nn.init.xavier_normal_(linear.weight, gain=gain)


def sub_encoder_config(config: BeatsConfig, num_layers: int) -> BeatsConfig:
    """A copy of `config` for a small helper stack (predictor, decoder): `num_layers` layers, no layerdrop, no
    gradient decay."""
    if num_layers < 1:
        raise ValueError(f"the predictor / decoder needs at least one layer, got {num_layers}")
    copied = copy.deepcopy(config)
    copied.num_hidden_layers = num_layers
    copied.layerdrop = 0.0
    copied.layer_wise_gradient_decay_ratio = 1.0
    return copied


def new_helper_stack(config: BeatsConfig, num_layers: int, init_weights: Callable[[nn.Module], None]) -> BeatsEncoder:
    """A BEATs layer stack (positional convolution, relative bias, layers) initialised as a new model is."""
    stack = BeatsEncoder(sub_encoder_config(config, num_layers))
    stack.apply(init_weights)
    if config.deep_norm:
        deep_norm_init_(stack.layers)
    return stack


# --------------------------------------------------------------------------------------------------------------
# checks, data, optimiser, accelerator


def check_source(config: str | None, model: str | None, what: str) -> None:
    """A new model (config) or one to continue (model), not both."""
    if config and model:
        raise ValueError(f"give either config (a config.json for a new {what}) or model (a folder), not both")


def patches_per_clip(config: BeatsConfig, feature_extractor, clip_seconds: float) -> int:
    """Patches of one clip window: (frames // p) * (mel // p), frames as the Kaldi filterbank counts them."""
    rate = feature_extractor.sampling_rate
    samples = round(clip_seconds * rate)
    window = int(rate * feature_extractor.frame_length_ms / 1000)
    shift = int(rate * feature_extractor.frame_shift_ms / 1000)
    frames = 1 + (samples - window) // shift if samples >= window else 0
    return (frames // config.patch_size) * (config.num_mel_bins // config.patch_size)


def check_run(args: BeatsRunOptions, config: BeatsConfig, feature_extractor) -> int:
    """Settings that would fail mid-run fail now; returns the patches per clip."""
    if args.mixed_precision not in ("no", "fp16", "bf16"):
        raise ValueError(f"mixed_precision must be no, fp16 or bf16, got {args.mixed_precision!r}")
    if feature_extractor.num_mel_bins != config.num_mel_bins:
        raise ValueError(f"the feature extractor makes {feature_extractor.num_mel_bins} mel bins, the model expects "
                         f"{config.num_mel_bins}")
    patches = patches_per_clip(config, feature_extractor, args.clip_seconds)
    if patches < 2:
        raise ValueError(f"clip_seconds {args.clip_seconds} gives {patches} patch(es); use longer windows")
    return patches


def clip_loader(args: BeatsRunOptions, data: str, sampling_rate: int) -> torch.utils.data.DataLoader:
    """Shuffled fixed-length windows of the unlabelled clips in `data`, checked before anything runs. The loader
    has its own generator: iterating never draws from the global one, whose (checkpointed) state the masks use."""
    examples = pretraining_examples(data)
    check_examples(examples, [], sampling_rate, args.resample)
    dataset = ClipDataset(examples, [], sampling_rate, args.clip_seconds, task="multi", train=True)
    return torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                       drop_last=len(dataset) > args.batch_size,
                                       generator=torch.Generator().manual_seed(args.seed))


def build_optimiser(model: nn.Module, args: BeatsRunOptions, batches_per_epoch: int):
    """AdamW (betas 0.9/0.98, no decay on biases and 1-D tensors) and a warm-up + cosine schedule; total steps."""
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / args.gradient_accumulation_steps))
    total_steps = args.max_steps or steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(parameter_groups(model, args.lr, args.weight_decay), lr=args.lr, betas=(0.9, 0.98))
    return optimizer, build_scheduler(optimizer, "cosine", args.warmup_steps, total_steps), total_steps


def beats_accelerator(args: BeatsRunOptions, output_dir: Path, layerdrop: float):
    """The shared accelerator; with layerdrop, DDP must allow parameters without gradients in a step."""
    return make_accelerator(output_dir, args.mixed_precision, args.gradient_accumulation_steps, args.log_with,
                            args.cpu, find_unused_parameters=layerdrop > 0)


__all__ = [
    "BeatsRunOptions",
    "add_run_arguments",
    "beats_accelerator",
    "build_optimiser",
    "check_run",
    "check_source",
    "clip_loader",
    "deep_norm_init_",
    "new_helper_stack",
    "patches_per_clip",
    "sub_encoder_config",
]
