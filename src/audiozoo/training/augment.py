"""Augmentations shared by the training loops: on waveforms (gain, roll, mixup) and on features (SpecAugment,
mixup). They draw from torch's global generator, whose state accelerate saves and restores with a checkpoint,
so a resumed run draws what the uninterrupted run would have."""

from __future__ import annotations

import torch


def random_gain(waveforms: torch.Tensor, max_db: float) -> torch.Tensor:
    """Scale each clip [B, N] by a gain drawn uniformly in [-max_db, +max_db] dB."""
    if max_db <= 0:
        return waveforms
    decibels = (torch.rand(waveforms.shape[0], 1) * 2 - 1) * max_db
    return waveforms * (10.0 ** (decibels / 20.0)).to(waveforms)


def random_roll(waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Roll each clip circularly over its own valid samples by a random shift (padding stays at the end)."""
    rolled = waveforms.clone()
    for row, length in enumerate(lengths.tolist()):
        if length > 1:
            rolled[row, :length] = torch.roll(waveforms[row, :length], int(torch.randint(length, (1,))))
    return rolled


def mixup(inputs: torch.Tensor, targets: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix every example with a random partner: x = l x_i + (1 - l) x_j and y likewise, l ~ Beta(alpha, alpha)
    per example. Targets must be float (one-hot, many-hot or frame targets). Works on waveforms or features."""
    if alpha <= 0:
        return inputs, targets
    batch = inputs.shape[0]
    weights = torch.distributions.Beta(float(alpha), float(alpha)).sample((batch,))
    partner = torch.randperm(batch)

    def blend(tensor: torch.Tensor) -> torch.Tensor:
        weight = weights.view((batch,) + (1,) * (tensor.dim() - 1)).to(tensor)
        return weight * tensor + (1 - weight) * tensor[partner]

    return blend(inputs), blend(targets)


def spec_augment(features: torch.Tensor, time_masks: int = 2, time_width: int = 40, frequency_masks: int = 2,
                 frequency_width: int = 16, time_axis: int = -1, frequency_axis: int = -2) -> torch.Tensor:
    """SpecAugment (Park et al., 2019): zero up to `time_masks` stripes of at most `time_width` frames and
    `frequency_masks` stripes of at most `frequency_width` bins, independently per example."""
    masked = features.clone()
    moved = masked.movedim((frequency_axis, time_axis), (-2, -1))  # a view: writes land in `masked`
    bins, frames = moved.shape[-2], moved.shape[-1]
    for row in range(moved.shape[0]):
        for count, width, size, along_time in ((time_masks, time_width, frames, True),
                                               (frequency_masks, frequency_width, bins, False)):
            for _ in range(count):
                span = int(torch.randint(0, min(width, size) + 1, (1,)))
                if span == 0:
                    continue
                start = int(torch.randint(0, size - span + 1, (1,)))
                if along_time:
                    moved[row, ..., start : start + span] = 0.0
                else:
                    moved[row, ..., start : start + span, :] = 0.0
    return masked


__all__ = ["mixup", "random_gain", "random_roll", "spec_augment"]
