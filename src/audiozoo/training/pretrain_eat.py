"""`audiozoo pretrain eat`: EAT's self-supervised utterance-frame objective (Chen et al., IJCAI 2024), one
accelerate loop.

Reads top to bottom: data -> student (EatModel + CNN decoder) and EMA teacher -> optimiser -> accelerator ->
(resume) -> training steps with checkpoints -> the student encoder saved as a ready-to-use folder.

One step (models/EAT_pretraining.py `Data2VecMultiModel.forward` of github.com/cwx-worst-one/EAT):
1. B clips -> filterbanks [B, T, 128]; the teacher encodes every clip whole, once; its targets are the FFN
   outputs of the top-k blocks on the patch tokens, each instance-normalised over the patches per channel,
   averaged, then layer-normalised (no affine) over the channels.
2. `clone_batch` inverse block masks per clip (`masking_eat`); the student encodes, for every clone, the CLS
   and only its kept patches (the masked ones are removed, not zeroed).
3. The CNN decoder puts the encoded patches back on the (time x frequency) grid with noise tokens
   N(0, mask_noise_std) at the masked places and predicts the targets everywhere.
4. loss = frame_loss_weight * frame + utterance_loss_weight * utterance; after each optimiser update the
   teacher moves towards the student (EMA, decay linear from `ema_start` to `ema_end` over `ema_anneal_steps`).

As the original (config/pretraining_AS2M.yaml): mask ratio 0.8 with `mask_prob_adjust` 0.07 and 5 x 5 blocks,
the same kept count in every row, clone_batch 16; positions added before the masked patches are dropped, the
CLS (no position) prepended after; teacher = EMA of the whole encoder (patch embedding, CLS, input LayerNorm,
blocks; `ema_encoder_only: false`, `ema_local_encoder: true`), decoder excluded, kept in fp32, stepped only when
its decay is < 1, decay for update n = end - (end - start) * (1 - n / anneal_steps); targets of all blocks by
default (`average_top_k_layers` 12 of 12) from the FFN output (`end_of_block_targets: false`), CLS dropped;
Decoder2d: blocks of grouped Conv2d (16 groups) + channel LayerNorm (no affine, eps 1e-5) + GELU with a
residual around every block whose width matches, then a Linear back to the encoder width, with PyTorch's
default initialisation (the original resets it so); the losses: frame = squared error summed over the masked
patches' channels / sqrt(D) / number of masked patches; utterance = squared error between the student's
final-layer CLS (no head) and the mean target over the patches, summed over channels AND over the B *
clone_batch rows / sqrt(D) — the original multiplies it by `sample_size` before fairseq divides every loss by
`sample_size`, so its weight relative to the frame loss grows with the per-process batch, here too;
AdamW (fairseq's Adam decays decoupled) betas (0.9, 0.95), weight decay 0.05 except on biases and 1-D
parameters, lr 5e-4, cosine schedule after a linear warm-up, gradient clipping at norm 4; a new encoder's
patch convolution gets MAE's xavier-uniform initialisation.

Simplified or different, and why:
- masks are drawn in the loop from torch's global generator (the original draws them with torch in the data
  workers); the top-up/trim to the exact count uses random scores, not `multinomial` (same distribution);
- the input embeddings (patch conv, positions, LayerNorm) run once per clip and every clone gathers its kept
  tokens from them; the original clones before the per-token LayerNorm, so the result is the same (a
  dropout there, 0 in EAT, would be shared by the clones);
- data: fixed-length waveform windows (`ClipDataset`, a random crop of longer clips, zeros after shorter
  ones) from a manifest / datasets folder / folder of audio, padded to `max_length` frames in the log domain
  as the original; no AudioSet h5 / weighted sampling;
- linear layers start from EatModel's truncated normal (std 0.02) instead of fairseq's normal (std 0.02);
- mixed precision is accelerate's autocast (the teacher runs under it too; the original casts its teacher to
  fp16 and keeps an fp32 copy); no target/prediction-variance guards (disabled in EAT's config anyway), no
  layerdrop, no DINO or reconstruction-loss experiments;
- the EMA runs on whole tensors (not on FSDP / ZeRO-3 shards);
- the student encoder is what gets saved (the original's feature extraction also uses the student).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from transformers import AutoFeatureExtractor
from transformers.modeling_outputs import ModelOutput

from ..models.eat import EatConfig, EatFeatureExtractor, EatModel
from ..layers.vit import run_blocks
from . import loop
from .common import (
    PretrainResult,
    TrainingState,
    compute_features,
    load_config,
    make_accelerator,
)
from .data import (
    AUDIO_SUFFIXES,
    ClipDataset,
    Example,
    check_examples,
    examples_from_source,
)
from .masking_eat import clip_of_rows, kept_indices, multi_mask
from .optim import build_scheduler, parameter_groups
from .options import PretrainEatArgs, options_from, summary_line
from .options import add_pretrain_eat_arguments as add_arguments


@dataclass
class PretrainEatResult(PretrainResult):
    """Output folder, per-step losses, wall time, optimiser steps."""


@dataclass
class EatPretrainingOutput(ModelOutput):
    """Student side of one step.

    Args:
        cls_token: [B * clone_batch, D] the final-layer CLS of every clone (the utterance prediction).
        predictions: [B * clone_batch, P, D] the decoder's prediction of every patch's target.
    """

    cls_token: torch.FloatTensor | None = None
    predictions: torch.FloatTensor | None = None


class EatDecoderBlock(nn.Module):
    """Grouped Conv2d (same size) -> LayerNorm over channels without affine (eps 1e-5) -> GELU."""

    def __init__(self, in_channels: int, channels: int, kernel: int, groups: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, kernel_size=kernel, padding=kernel // 2, groups=groups)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        height, width = grid.shape[-2:]
        hidden = self.conv(grid)[..., :height, :width]  # an even kernel yields one extra row/column (SamePad2d)
        hidden = F.layer_norm(hidden.transpose(1, 3), hidden.shape[1:2]).transpose(1, 3)
        return F.gelu(hidden)


class EatCnnDecoder(nn.Module):
    """EAT's lightweight CNN decoder (Decoder2d): [N, P, D] time-major tokens on the (time x frequency) grid ->
    conv blocks with residuals -> Linear to D per patch."""

    def __init__(self, hidden_size: int, grid: tuple[int, int], dim: int, kernel: int, layers: int, groups: int):
        super().__init__()
        if hidden_size % groups or dim % groups:
            raise ValueError(f"decoder_groups ({groups}) must divide the encoder width ({hidden_size}) and "
                             f"decoder_dim ({dim})")
        self.grid = grid
        self.blocks = nn.ModuleList(
            [EatDecoderBlock(hidden_size if index == 0 else dim, dim, kernel, groups) for index in range(layers)]
        )
        self.proj = nn.Linear(dim, hidden_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        rows, _, channels = tokens.shape
        hidden = tokens.transpose(1, 2).reshape(rows, channels, *self.grid)  # token t * F + f -> [:, :, t, f]
        for block in self.blocks:
            output = block(hidden)
            hidden = output + hidden if output.shape[1] == hidden.shape[1] else output
        return self.proj(hidden.flatten(2).transpose(1, 2))


def encode_visible(encoder: EatModel, input_values: torch.Tensor, keep_index: torch.Tensor, clone_batch: int
                   ) -> torch.Tensor:
    """The student pass: embeddings of every clip once, then per clone the CLS + its kept patches [N, 1 + K, D]
    through the blocks (masked patches are removed, as the original's `remove_masked=True`)."""
    embedded = encoder.embeddings(input_values)  # [B, 1 + P, D]: CLS, then patches with their positions
    clips = clip_of_rows(input_values.shape[0], clone_batch, input_values.device)
    patches = embedded[:, 1:][clips[:, None], keep_index]
    tokens = torch.cat([embedded[clips, :1], patches], dim=1)
    hidden, _, _ = run_blocks(encoder.layers, tokens)
    return hidden


def decoder_input(encoded_patches: torch.Tensor, keep_index: torch.Tensor, num_patches: int, noise_std: float
                  ) -> torch.Tensor:
    """[N, K, D] encoded kept patches -> [N, P, D] on their grid places, N(0, noise_std) tokens elsewhere."""
    rows, _, channels = encoded_patches.shape
    noise = encoded_patches.new_empty(rows, num_patches, channels).normal_(0.0, noise_std)
    return noise.scatter(1, keep_index.unsqueeze(-1).expand(-1, -1, channels), encoded_patches)


class EatPretrainingModel(nn.Module):
    """The trained side of EAT pre-training: the student `EatModel` and the CNN decoder. The utterance
    prediction is the student's final-layer CLS itself (the original has no head on it)."""

    def __init__(self, encoder: EatModel, decoder_dim: int | None = None, decoder_kernel: int = 3,
                 decoder_layers: int = 6, decoder_groups: int = 16, mask_noise_std: float = 0.01):
        super().__init__()
        config = encoder.config
        self.encoder = encoder
        self.grid = (config.max_length // config.patch_size, config.num_frequency_patches)
        self.decoder = EatCnnDecoder(config.hidden_size, self.grid, decoder_dim or config.hidden_size,
                                     decoder_kernel, decoder_layers, decoder_groups)
        self.mask_noise_std = mask_noise_std

    def forward(self, input_values: torch.Tensor, mask: torch.Tensor, clone_batch: int) -> EatPretrainingOutput:
        """`input_values` [B, max_length, 128]; `mask` bool [B * clone_batch, P], True on the patches to predict."""
        expected = (self.encoder.config.max_length, self.encoder.config.num_mel_bins)
        if input_values.dim() != 3 or tuple(input_values.shape[1:]) != expected:
            raise ValueError(f"input_values must be [batch, {expected[0]}, {expected[1]}], got {tuple(input_values.shape)}")
        keep_index = kept_indices(mask)
        hidden = encode_visible(self.encoder, input_values, keep_index, clone_batch)
        tokens = decoder_input(hidden[:, 1:], keep_index, mask.shape[1], self.mask_noise_std)
        return EatPretrainingOutput(cls_token=hidden[:, 0], predictions=self.decoder(tokens))


@torch.no_grad()
def teacher_targets(teacher: EatModel, input_values: torch.Tensor, top_k: int) -> torch.Tensor:
    """[B, P, D] float32 targets: the FFN outputs (before the block's residual and LayerNorm) of the top-k blocks
    on the patch tokens, instance-normalised over patches per channel, averaged, layer-normalised (no affine)."""
    outputs: list[torch.Tensor] = []
    hooks = [layer.mlp.register_forward_hook(lambda module, args, output: outputs.append(output))
             for layer in teacher.layers[-top_k:]]
    try:
        teacher(input_values=input_values)
    finally:
        for hook in hooks:
            hook.remove()
    layers = [F.instance_norm(output[:, 1:].float().transpose(1, 2)).transpose(1, 2) for output in outputs]
    average = torch.stack(layers).mean(dim=0)
    return F.layer_norm(average, average.shape[-1:])


def eat_losses(output: EatPretrainingOutput, targets: torch.Tensor, mask: torch.Tensor, clone_batch: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(frame, utterance) losses as the original normalises them (see the module docstring)."""
    scale = 1.0 / math.sqrt(targets.shape[-1])
    cloned = targets.repeat_interleave(clone_batch, dim=0)
    frame = (output.predictions[mask].float() - cloned[mask]).pow(2).sum() * scale / mask.sum()
    utterance = (output.cls_token.float() - cloned.mean(dim=1)).pow(2).sum() * scale
    return frame, utterance


def ema_decay(step: int, start: float, end: float, anneal_steps: int) -> float:
    """The original's `get_annealed_rate`: linear from `start` (step 0) to `end` (step >= anneal_steps)."""
    if step >= anneal_steps:
        return end
    return end - (end - start) * (1 - step / anneal_steps)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """teacher <- decay * teacher + (1 - decay) * student on trained tensors; the others (the fixed position
    table) are copied, as fairseq's EMAModule does."""
    teacher_state = teacher.state_dict()
    for name, value in student.state_dict(keep_vars=True).items():
        target = teacher_state[name]
        if value.requires_grad:
            target.mul_(decay).add_(value.detach().to(target.dtype), alpha=1 - decay)
        else:
            target.copy_(value.detach())


def pretraining_examples(source: str | Path) -> list[Example]:
    """Unlabelled clips: every audio file under a folder (any depth), or the rows of a manifest / datasets
    folder (their labels are ignored; rows marked valid or test are left out)."""
    path = Path(source)
    if path.is_dir() and not any((path / name).is_file() for name in ("dataset_info.json", "state.json",
                                                                       "dataset_dict.json")):
        examples = [Example(file, (), source=str(file)) for file in sorted(path.rglob("*"))
                    if file.suffix.lower() in AUDIO_SUFFIXES]
    else:
        examples = [dataclasses.replace(example, labels=()) for example in examples_from_source(path)
                    if example.split in (None, "train")]
    if not examples:
        raise ValueError(f"{source}: no audio clips to pre-train on")
    return examples


def build_encoder(args: PretrainEatArgs) -> tuple[EatModel, EatFeatureExtractor]:
    """The student encoder and its front end: from a model folder, or new from a config.json (MAE's patch init)."""
    if bool(args.config) == bool(args.model):
        raise ValueError("give either config (a config.json for a new encoder) or model (an EAT folder)")
    if args.model:
        encoder = EatModel.from_pretrained(args.model, dtype=torch.float32)
        feature_extractor = AutoFeatureExtractor.from_pretrained(args.model)
    else:
        config = load_config(args.config)
        if not isinstance(config, EatConfig):
            raise ValueError(f"{args.config}: EAT pre-training needs model_type {EatConfig.model_type}, got "
                             f"{config.model_type}")
        encoder = EatModel(config)
        weight = encoder.embeddings.patch_embedding.conv.weight
        with torch.no_grad():
            nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
        feature_extractor = EatFeatureExtractor(max_length=config.max_length)
    if feature_extractor.max_length != encoder.config.max_length:
        raise ValueError(f"the feature extractor makes {feature_extractor.max_length} frames, the encoder expects "
                         f"{encoder.config.max_length} (max_length)")
    return encoder, feature_extractor


def check_args(args: PretrainEatArgs, encoder: EatModel, feature_extractor: EatFeatureExtractor) -> None:
    """Settings that would fail mid-run fail now."""
    rate = feature_extractor.sampling_rate
    samples = round(args.clip_seconds * rate)
    window = int(rate * feature_extractor.frame_length_ms / 1000)
    shift = int(rate * feature_extractor.frame_shift_ms / 1000)
    frames = 1 + (samples - window) // shift
    if frames > feature_extractor.max_length:
        raise ValueError(f"clip_seconds {args.clip_seconds} gives {frames} frames, more than max_length "
                         f"{feature_extractor.max_length}: use shorter windows or a config with a larger max_length")
    layers = encoder.config.num_hidden_layers
    if args.average_top_k_layers is not None and not 1 <= args.average_top_k_layers <= layers:
        raise ValueError(f"average_top_k_layers must be in 1..{layers}, got {args.average_top_k_layers}")
    if args.mixed_precision not in ("no", "fp16", "bf16"):
        raise ValueError(f"mixed_precision must be no, fp16 or bf16, got {args.mixed_precision!r}")


def _train_batch(model: nn.Module, teacher: EatModel, batch: dict, feature_extractor: EatFeatureExtractor,
                 accelerator: Accelerator, args: PretrainEatArgs, grid: tuple[int, int], top_k: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, frame, utterance) of one batch of clips."""
    features = compute_features(feature_extractor, batch["waveform"], accelerator.device)
    mask = multi_mask(features.shape[0], args.clone_batch, grid, args.mask_ratio, args.block_size,
                      args.mask_prob_adjust).to(accelerator.device)
    with accelerator.autocast():
        targets = teacher_targets(teacher, features, top_k)
        output = model(features, mask, args.clone_batch)
        frame, utterance = eat_losses(output, targets, mask, args.clone_batch)
    loss = args.frame_loss_weight * frame + args.utterance_loss_weight * utterance
    return loss, frame, utterance


def run_pretrain_eat(args: PretrainEatArgs) -> PretrainEatResult:
    """Pre-train (or continue pre-training) an EAT encoder; the student is saved to `output_dir`."""
    started = time.perf_counter()
    set_seed(args.seed)
    output_dir = Path(args.output_dir)

    # 1. data and encoder, checked before anything runs
    examples = pretraining_examples(args.data)
    encoder, feature_extractor = build_encoder(args)
    check_args(args, encoder, feature_extractor)
    check_examples(examples, [], feature_extractor.sampling_rate, args.resample)
    dataset = ClipDataset(examples, [], feature_extractor.sampling_rate, args.clip_seconds, task="multi", train=True)
    # its own generator: iterating never draws from the global one, whose (checkpointed) state the masks use
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                         drop_last=len(dataset) > args.batch_size,
                                         generator=torch.Generator().manual_seed(args.seed))

    # 2. student (encoder + decoder) and the EMA teacher (a copy of the encoder, never trained)
    model = EatPretrainingModel(encoder, args.decoder_dim, args.decoder_kernel, args.decoder_layers,
                                args.decoder_groups, args.mask_noise_std)
    teacher = copy.deepcopy(encoder).requires_grad_(False).eval()
    grid, top_k = model.grid, args.average_top_k_layers or encoder.config.num_hidden_layers

    # 3. optimiser and schedule
    steps_per_epoch = max(1, math.ceil(len(loader) / args.gradient_accumulation_steps))
    total_steps = args.max_steps or steps_per_epoch * args.epochs
    optimizer = torch.optim.AdamW(parameter_groups(model, args.lr, args.weight_decay), lr=args.lr, betas=(0.9, 0.95))
    scheduler = build_scheduler(optimizer, "cosine", args.warmup_steps, total_steps)

    # 4. accelerator; the teacher stays out of prepare (no DDP wrapper) but is checkpointed
    accelerator = make_accelerator(output_dir, args.mixed_precision, args.gradient_accumulation_steps, args.log_with,
                                   args.cpu)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    teacher.to(accelerator.device)
    state = TrainingState()
    accelerator.register_for_checkpointing(state, teacher)
    loop.init_trackers(accelerator, "audiozoo-pretrain-eat", args)

    # 5. resume (mid-epoch: the batches already seen in the current epoch are skipped)
    loop.resume(accelerator, args, output_dir, state)

    # 6. training: each step = masks, teacher targets, student + decoder, losses; after each optimiser update the
    # teacher moves towards the student
    def batch_loss(batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, frame, utterance = _train_batch(model, teacher, batch, feature_extractor, accelerator, args, grid, top_k)
        return loss, {"frame_loss": frame, "utterance_loss": utterance}

    def update_teacher(step: int) -> dict[str, float]:
        decay = ema_decay(step, args.ema_start, args.ema_end, args.ema_anneal_steps)
        if decay < 1:
            ema_update(teacher, accelerator.unwrap_model(model).encoder, decay)
        return {"ema_decay": decay}

    stopped = loop.train_steps(accelerator, model, optimizer, scheduler, loader, state, args, total_steps,
                               "pretrain eat", batch_loss, update_teacher)
    if stopped:  # interrupted on purpose (tests): the checkpoint is the result
        accelerator.end_training()
        return PretrainEatResult(str(output_dir), state.losses, time.perf_counter() - started, state.step)

    # 7. the student encoder + front end as a ready-to-use folder (AutoModel / AutoFeatureExtractor)
    loop.save_model_folder(accelerator, accelerator.unwrap_model(model).encoder, feature_extractor, output_dir)
    result = PretrainEatResult(str(output_dir), state.losses, time.perf_counter() - started, state.step)
    loop.write_results(accelerator, output_dir, result)
    accelerator.end_training()
    return result


def main(args: argparse.Namespace) -> int:
    """`audiozoo pretrain eat`."""
    result = run_pretrain_eat(options_from(args, PretrainEatArgs))
    print(summary_line(result, f"{result.steps} steps", "encoder"))
    return 0


__all__ = [
    "EatCnnDecoder",
    "EatPretrainingModel",
    "EatPretrainingOutput",
    "PretrainEatArgs",
    "PretrainEatResult",
    "add_arguments",
    "decoder_input",
    "eat_losses",
    "ema_decay",
    "ema_update",
    "encode_visible",
    "main",
    "pretraining_examples",
    "run_pretrain_eat",
    "teacher_targets",
]
