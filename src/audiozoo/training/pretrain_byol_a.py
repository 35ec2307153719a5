"""`audiozoo pretrain byol_a`: self-supervised BYOL-A pre-training (Niizumi et al., IJCNN 2021; v2 TASLP 2023).

Reads top to bottom: clips (labels ignored) -> encoder and front end (new: norm statistics from the clips) ->
online network (encoder + projector + predictor) and EMA target (encoder + projector) -> Adam -> accelerator
(the target stays out of `prepare`, registered for checkpointing with the augmentation's memory bank) ->
(resume) -> steps: two augmented views, symmetric BYOL loss, EMA update on every optimiser step -> the online
encoder saved as a ready-to-use folder (`AutoModel.from_pretrained`, `audiozoo probe --model OUT`).

The original recipe (nttcslab/byol-a train.py / v2/train_v2.py, lucidrains' BYOL): 0.95 s random crops (64 x 96
log-mel), projector and predictor Linear-BatchNorm-ReLU-Linear (4096 hidden, 256 out), EMA decay 0.99, Adam
without weight decay or schedule, lr 3e-4 (v1) / 1e-4 (v2), batch 256, 100 epochs; only the encoder is kept.
"""

from __future__ import annotations

import argparse
import copy
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import set_seed
from torch import nn
from transformers import AutoFeatureExtractor, AutoModel

from ..models.byol_a import ByolAFeatureExtractor, ByolAModel
from . import loop
from .byol_a_augment import ByolAAugmentation
from .common import (
    TrainingState,
    compute_features,
    load_config,
    make_accelerator,
    split_examples,
)
from .data import AUDIO_SUFFIXES, Example, check_examples, examples_from_source, load_example_audio
from .options import PretrainByolAArgs, options_from, summary_line
from .options import add_pretrain_byol_a_arguments as add_arguments

DEFAULT_LR = {1: 3e-4, 2: 1e-4}  # config.yaml / config_v2.yaml


@dataclass
class PretrainByolAResult:
    output_dir: str
    losses: list = field(default_factory=list)  # (optimiser step, loss)
    seconds: float = 0.0
    clips: int = 0
    norm_stats: tuple[float, float] = (0.0, 0.0)


# ---------------------------------------------------------------------------------------------------- data


def unlabelled_examples(source: str | Path) -> list[Example]:
    """Clips of a manifest or `datasets` folder, or every audio file under a plain folder (flat, as the
    original's training folder, or with label sub-folders). Labels are not needed and not used."""
    source = Path(source)
    is_dataset = any((source / name).is_file() for name in ("dataset_info.json", "state.json", "dataset_dict.json"))
    if source.is_dir() and not is_dataset:
        paths = sorted(path for path in source.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES)
        if not paths:
            raise ValueError(f"{source}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found")
        return [Example(path, (), source=str(path)) for path in paths]
    return examples_from_source(source)


class UnlabelledClips(torch.utils.data.Dataset):
    """Clips -> {"waveform" [N]}: a random window of N = clip_seconds * rate samples, zero-padded at the end when
    the clip is shorter (as v2's WavDataset).

    The window start comes from a generator seeded by (seed, epoch, clip), not from a global generator: the
    prepared loader fetches one batch ahead, so global draws made while loading would run ahead of a checkpoint
    and a resumed run would crop differently. Call `set_epoch` at the start of every epoch.
    """

    def __init__(self, examples: Sequence[Example], sampling_rate: int, clip_seconds: float, seed: int = 0):
        self.examples, self.sampling_rate, self.seed = list(examples), sampling_rate, seed
        self.samples = round(clip_seconds * sampling_rate)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, item: int) -> dict:
        samples = load_example_audio(self.examples[item], self.sampling_rate)
        start = 0
        if samples.size > self.samples:
            generator = np.random.default_rng((self.seed, self.epoch, item))
            start = int(generator.integers(samples.size - self.samples + 1))
        waveform = np.zeros(self.samples, dtype=np.float32)
        window = samples[start : start + self.samples]
        waveform[: window.size] = window
        return {"waveform": torch.from_numpy(waveform), "index": item}


# --------------------------------------------------------------------------------------------------- model


def projection_mlp(in_size: int, hidden_size: int, out_size: int) -> nn.Sequential:
    """BYOL's projector / predictor: Linear -> BatchNorm1d -> ReLU -> Linear."""
    return nn.Sequential(nn.Linear(in_size, hidden_size), nn.BatchNorm1d(hidden_size), nn.ReLU(inplace=True),
                         nn.Linear(hidden_size, out_size))


class ProjectedEncoder(nn.Module):
    """Encoder -> clip embedding (pooler_output: max + mean over time) -> projection. The part the target copies."""

    def __init__(self, encoder: ByolAModel, hidden_size: int, projection_size: int):
        super().__init__()
        self.encoder = encoder
        self.projector = projection_mlp(encoder.config.hidden_size, hidden_size, projection_size)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encoder(input_values=input_values).pooler_output)


class ByolAOnline(nn.Module):
    """The trained network: projected encoder + predictor. One forward takes both views and runs them through
    separately (BatchNorm statistics per view, as the original's two calls)."""

    def __init__(self, encoder: ByolAModel, hidden_size: int, projection_size: int):
        super().__init__()
        self.backbone = ProjectedEncoder(encoder, hidden_size, projection_size)
        self.predictor = projection_mlp(projection_size, hidden_size, projection_size)

    def forward(self, view_one: torch.Tensor, view_two: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.predictor(self.backbone(view_one)), self.predictor(self.backbone(view_two))


class EmaTarget(nn.Module):
    """The target network: a copy of the online backbone, never trained, moved towards the online weights after
    every optimiser step (theta_t <- decay * theta_t + (1 - decay) * theta_o). Like lucidrains' BYOL it stays in
    train mode (BatchNorm batch statistics, dropout) and only parameters are averaged; its buffers follow its own
    forward passes. `updates` counts the EMA steps (checkpointed with the rest)."""

    def __init__(self, online_backbone: ProjectedEncoder, decay: float):
        super().__init__()
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"ema_decay must be in [0, 1], got {decay}")
        self.network = copy.deepcopy(online_backbone).requires_grad_(False)
        self.decay = decay
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def forward(self, view_one: torch.Tensor, view_two: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.network(view_one), self.network(view_two)

    @torch.no_grad()
    def update(self, online_backbone: ProjectedEncoder) -> None:
        for target, online in zip(self.network.parameters(), online_backbone.parameters(), strict=True):
            target.lerp_(online.detach().to(target.dtype), 1.0 - self.decay)
        self.updates += 1


def byol_loss(prediction: torch.Tensor, target_projection: torch.Tensor) -> torch.Tensor:
    """2 - 2 cos(prediction, target) per example, in float32 (the target carries no gradient)."""
    prediction = nn.functional.normalize(prediction.float(), dim=-1)
    target_projection = nn.functional.normalize(target_projection.detach().float(), dim=-1)
    return 2.0 - 2.0 * (prediction * target_projection).sum(dim=-1)


def symmetric_byol_loss(predictions: tuple[torch.Tensor, torch.Tensor],
                        projections: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """BYOL's loss: online prediction of view one against the target projection of view two, plus the swap,
    averaged over the batch (range 0..8)."""
    return (byol_loss(predictions[0], projections[1]) + byol_loss(predictions[1], projections[0])).mean()


def build_encoder(args: PretrainByolAArgs) -> tuple[ByolAModel, ByolAFeatureExtractor, bool]:
    """(encoder, front end, is_new): a new encoder from `config`, or the one in `model` with its front end."""
    if bool(args.config) == bool(args.model):
        raise ValueError("give exactly one of config (a new encoder) or model (a BYOL-A folder to continue from)")
    if args.model:
        encoder = AutoModel.from_pretrained(args.model, dtype=torch.float32)
        feature_extractor = AutoFeatureExtractor.from_pretrained(args.model)
    else:
        config = load_config(args.config)
        if config.model_type != "audiozoo-byol-a":
            raise ValueError(f"{args.config}: BYOL-A pre-training needs model_type audiozoo-byol-a, "
                             f"got {config.model_type}")
        encoder = ByolAModel(config)
        feature_extractor = ByolAFeatureExtractor.for_version(config.version, n_mels=config.n_mels)
    if not isinstance(encoder, ByolAModel) or not isinstance(feature_extractor, ByolAFeatureExtractor):
        raise TypeError(f"{args.model} is not a BYOL-A encoder (got {type(encoder).__name__})")
    return encoder, feature_extractor, args.model is None


def compute_clip_norm_stats(feature_extractor: ByolAFeatureExtractor, examples: Sequence[Example], limit: int,
                            seed: int) -> tuple[float, float]:
    """Log-mel mean/std over (at most `limit` randomly chosen) clips, set on the feature extractor."""
    chosen = list(examples)
    if len(chosen) > limit:
        chosen = random.Random(seed).sample(chosen, limit)
    rate = feature_extractor.sampling_rate
    return feature_extractor.compute_norm_stats((load_example_audio(example, rate) for example in chosen), rate)


# ---------------------------------------------------------------------------------------------------- loop


def _finished(state: TrainingState, args: PretrainByolAArgs) -> bool:
    return state.step >= args.max_steps if args.max_steps is not None else state.epoch >= args.epochs


def run_pretrain_byol_a(args: PretrainByolAArgs) -> PretrainByolAResult:
    """Pre-train, checkpoint, resume; save the online encoder and its front end to `output_dir`."""
    started = time.perf_counter()
    set_seed(args.seed)
    output_dir = Path(args.output_dir)

    # 1. clips (labels ignored), checked before anything is built
    examples = unlabelled_examples(args.data)
    if args.train_split_only:
        examples = split_examples(examples, args.seed)["train"]
    if len(examples) < 2:
        raise ValueError(f"{args.data}: BYOL-A needs at least 2 clips (BatchNorm over the batch), "
                         f"found {len(examples)}")

    # 2. encoder and front end; a new encoder's norm statistics come from the clips (the original's pre-norm)
    encoder, feature_extractor, is_new = build_encoder(args)
    check_examples(examples, sorted({label for example in examples for label in example.labels}),
                   feature_extractor.sampling_rate, args.resample)
    if is_new:
        compute_clip_norm_stats(feature_extractor, examples, args.norm_stats_clips, args.seed)
    version = args.version or encoder.config.version
    lr = args.lr if args.lr is not None else DEFAULT_LR[version]

    # 3. online network, target, augmentation, optimiser; the loader has its own generator (see finetune)
    online = ByolAOnline(encoder, args.projection_hidden_size, args.projection_size)
    target = EmaTarget(online.backbone, args.ema_decay)
    augment = ByolAAugmentation(version, args.mixup_ratio, args.memory_size)
    clips = UnlabelledClips(examples, feature_extractor.sampling_rate, args.clip_seconds, args.seed)
    loader = torch.utils.data.DataLoader(clips, batch_size=args.batch_size, shuffle=True,
                                         drop_last=len(clips) > args.batch_size,
                                         generator=torch.Generator().manual_seed(args.seed))
    optimizer = torch.optim.Adam(online.parameters(), lr=lr)
    steps_per_epoch = max(1, math.ceil(len(loader) / args.gradient_accumulation_steps))

    # 4. accelerator: the online network is prepared; the target and the mixup bank are only checkpointed
    accelerator = make_accelerator(output_dir, args.mixed_precision, args.gradient_accumulation_steps, args.log_with,
                                   args.cpu)
    online, optimizer, loader = accelerator.prepare(online, optimizer, loader)
    target.to(accelerator.device).train()
    state = TrainingState()
    accelerator.register_for_checkpointing(state, target, augment)
    loop.init_trackers(accelerator, "audiozoo-pretrain-byol-a", args)

    # 5. resume (mid-epoch: the batches already seen in the current epoch are skipped)
    loop.resume(accelerator, args, output_dir, state)

    stopped = _train(args, accelerator, online, target, augment, optimizer, loader, clips, feature_extractor, state,
                     args.max_steps if args.max_steps is not None else steps_per_epoch * args.epochs)
    if stopped:  # interrupted on purpose (tests): the checkpoint is the result
        accelerator.save_state()
        accelerator.end_training()
        return PretrainByolAResult(str(output_dir), state.losses, time.perf_counter() - started, len(examples),
                                   (feature_extractor.mean, feature_extractor.std))

    # 6. the online encoder as a ready-to-use folder
    encoder = accelerator.unwrap_model(online).backbone.encoder
    loop.save_model_folder(accelerator, encoder, feature_extractor, output_dir)
    result = PretrainByolAResult(str(output_dir), state.losses, time.perf_counter() - started, len(examples),
                                 (feature_extractor.mean, feature_extractor.std))
    loop.write_results(accelerator, output_dir, result, "pretrain_results.json")
    accelerator.end_training()
    return result


def _train(args: PretrainByolAArgs, accelerator, online, target: EmaTarget, augment: ByolAAugmentation, optimizer,
           loader, clips: UnlabelledClips, feature_extractor, state: TrainingState, total_steps: int) -> bool:
    """Epochs of BYOL steps until `max_steps`/`epochs`; True when stopped early by `stop_after_steps`."""
    online.train()
    progress = loop.progress_bar(accelerator, state, total_steps, "pretrain byol_a")
    try:
        while not _finished(state, args):
            clips.set_epoch(state.epoch)
            for batch in loop.epoch_batches(accelerator, loader, state):  # resumed mid-epoch: the rest of the epoch
                features = compute_features(feature_extractor, batch["waveform"], accelerator.device)
                view_one, view_two = augment(features)
                with accelerator.accumulate(online):
                    with accelerator.autocast():
                        loss = symmetric_byol_loss(online(view_one, view_two), target(view_one, view_two))
                    loop.backward_and_step(accelerator, online, loss, optimizer)  # no schedule, no clipping
                if not accelerator.sync_gradients:
                    continue
                target.update(accelerator.unwrap_model(online).backbone)
                state.step += 1
                loss_value = float(accelerator.gather(loss.detach()).mean())
                loop.log_step(accelerator, state, progress, {"train/loss": loss_value})
                loop.checkpoint_if_due(accelerator, state, args)
                if loop.stop_requested(state, args):
                    return True
                if _finished(state, args):
                    return False
            loop.next_epoch(accelerator, state, args)
        return False
    finally:
        progress.close()


# ----------------------------------------------------------------------------------------------------- CLI


def main(args: argparse.Namespace) -> int:
    """Run from parsed CLI flags; prints where the encoder went."""
    result = run_pretrain_byol_a(options_from(args, PretrainByolAArgs))
    print(summary_line(result, f"{len(result.losses)} steps on {result.clips} clips", "encoder"))
    return 0


__all__ = [
    "ByolAOnline",
    "EmaTarget",
    "PretrainByolAArgs",
    "PretrainByolAResult",
    "add_arguments",
    "byol_loss",
    "main",
    "run_pretrain_byol_a",
    "symmetric_byol_loss",
    "unlabelled_examples",
]
