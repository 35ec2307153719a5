"""Pieces every training loop shares: splits, model/feature-extractor loading, the accelerator, the resumable
training state, and feature computation with SpecAugment on the right axes."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
from accelerate.state import AcceleratorState
from accelerate.utils import ProjectConfiguration
from transformers import AutoConfig
from transformers.models.auto.feature_extraction_auto import FEATURE_EXTRACTOR_MAPPING

from .augment import spec_augment
from .data import Example
from .manifest import ManifestRow, assign_splits
from .options import RunOptions

logger = logging.getLogger(__name__)

# families whose input_values are [B, T, F] (the others take [B, 1, F, T])
TIME_MAJOR_INPUTS = ("audiozoo-beats", "audiozoo-beats-tokenizer", "audiozoo-ast", "audiozoo-eat")


def split_examples(examples: list[Example], seed: int) -> dict[str, list[Example]]:
    """train/valid/test lists: the `split` column if complete, else whole groups (unseen test groups) or
    stratified single clips, drawn with `seed` (see `manifest.assign_splits`)."""
    rows = [ManifestRow(example.path, example.labels[0] if example.labels else "", example.split, example.group, index)
            for index, example in enumerate(examples)]
    splits = assign_splits(rows, seed)
    grouped = {"train": [], "valid": [], "test": []}
    for example, split in zip(examples, splits, strict=True):
        grouped[split].append(example)
    for split, members in grouped.items():
        if not members and split != "test":
            raise ValueError(f"the {split} split is empty: add more data or a split column")
    return grouped


def default_feature_extractor(config):
    """The family's feature extractor with its default (released-model) settings."""
    for config_class, extractor_class in FEATURE_EXTRACTOR_MAPPING.items():
        if type(config) is config_class:
            return extractor_class()
    raise ValueError(f"no feature extractor is registered for {type(config).__name__}")


def load_config(source: str):
    """A config from a model folder / Hub id, or from a config.json file (training from scratch)."""
    path = Path(source)
    if path.is_file() and path.suffix == ".json":
        values = json.loads(path.read_text(encoding="utf-8"))
        if "model_type" not in values:
            raise ValueError(f"{path}: a config file needs a model_type (e.g. audiozoo-byol-a)")
        return AutoConfig.for_model(values.pop("model_type"), **values)
    return AutoConfig.from_pretrained(source)


def make_accelerator(output_dir: str | Path, mixed_precision: str = "no", gradient_accumulation_steps: int = 1,
                     log_with: str | None = None, cpu: bool = False, find_unused_parameters: bool = False
                     ) -> Accelerator:
    """One Accelerator setup for every loop: checkpoints under OUT/checkpoints/checkpoint_i (2 kept), a seedable
    sampler (resumed epochs shuffle alike), optional trackers. `accelerate launch` decides devices and processes."""
    project = ProjectConfiguration(project_dir=str(output_dir), automatic_checkpoint_naming=True, total_limit=2)
    # several runs in one Python process (notebooks, tests) may ask for other precisions: accelerate keeps its
    # settings in a process-wide singleton, reset here (the process group, if any, is kept)
    AcceleratorState._reset_state()
    return Accelerator(
        mixed_precision=mixed_precision, gradient_accumulation_steps=gradient_accumulation_steps,
        project_config=project, log_with=log_with, cpu=cpu,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        # layerdrop skips whole layers: DDP must then tolerate parameters without gradients
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)] if find_unused_parameters else None,
    )


@dataclass
class PretrainResult:
    output_dir: str
    losses: list = field(default_factory=list)  # (step, loss) of every optimiser step
    seconds: float = 0.0
    steps: int = 0


@dataclass
class TrainingState:
    """Counters checkpointed with the model and optimiser, so a run resumes mid-epoch where it stopped."""

    epoch: int = 0
    step: int = 0  # optimiser steps
    batches_in_epoch: int = 0  # batches consumed in the current epoch
    best_metric: float | None = None
    best_epoch: int = -1
    epochs_without_improvement: int = 0
    losses: list = field(default_factory=list)  # (step, loss) of every optimiser step
    history: list = field(default_factory=list)  # per-epoch evaluation rows

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def latest_checkpoint(output_dir: str | Path) -> Path:
    """OUT/checkpoints/checkpoint_<highest i>."""
    folder = Path(output_dir) / "checkpoints"
    candidates = sorted(folder.glob("checkpoint_*"), key=lambda path: int(path.name.split("_")[-1]))
    if not candidates:
        raise FileNotFoundError(f"no checkpoint to resume from in {folder}")
    return candidates[-1]


def compute_features(feature_extractor, waveforms: torch.Tensor, device) -> torch.Tensor:
    """[B, N] windows -> the model's input_values on `device` (all windows have the same length)."""
    inputs = feature_extractor(list(waveforms.cpu()), sampling_rate=feature_extractor.sampling_rate,
                               return_tensors="pt")
    return inputs["input_values"].to(device)


def augment_features(features: torch.Tensor, model_type: str, time_masks: int, time_width: int, frequency_masks: int,
                     frequency_width: int) -> torch.Tensor:
    """SpecAugment on the family's layout ([B, T, F] or [B, 1, F, T])."""
    if time_masks == 0 and frequency_masks == 0:
        return features
    time_axis, frequency_axis = (1, 2) if model_type in TIME_MAJOR_INPUTS else (-1, -2)
    return spec_augment(features, time_masks, time_width, frequency_masks, frequency_width, time_axis, frequency_axis)


__all__ = [
    "TIME_MAJOR_INPUTS",
    "PretrainResult",
    "RunOptions",
    "TrainingState",
    "augment_features",
    "compute_features",
    "default_feature_extractor",
    "latest_checkpoint",
    "load_config",
    "make_accelerator",
    "split_examples",
]
