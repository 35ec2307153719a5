"""BYOL-A's augmentations (Niizumi et al., IJCNN 2021; TASLP 2023) on batches of normalised log-mel [B, 1, F, T].

The original applies them per example inside its Dataset with numpy's / Python's generators; here they work
on whole batches and draw from torch's global generator, whose state accelerate saves with every checkpoint,
so a resumed run draws exactly what an uninterrupted one would. Every example still gets its own draws.

Data flow per batch (as the original's training step):
  pre-norm   (x - mean) / std with dataset statistics: the feature extractor's `mean`/`std` (v2's
             PrecomputedNorm; v1's RunningNorm estimated the same two scalars online during its first epochs)
  view       v1: MixupInLogMel -> RandomResizeCrop;  v2: ... -> RandomLinearFader; drawn twice
  post-norm  `normalize_batch` over both views together (the original's NormalizeBatch(axis=[0, 2, 3]))
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

# the original's defaults: v1 byol_a/augmentations.py + train.py, v2 v2/byol_a2/augmentations.py + train_v2.py
MIXUP_DEFAULTS: dict[int, dict[str, float | int]] = {1: {"ratio": 0.4, "memory_size": 2048},
                                                      2: {"ratio": 0.2, "memory_size": 512}}


def _uniform(low: float, high: float, size: int) -> torch.Tensor:
    """`size` draws from U(low, high) on the CPU generator (the one accelerate checkpoints)."""
    return low + (high - low) * torch.rand(size)


def log_mixup_exp(x: torch.Tensor, background: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """log((1 - alpha) e^x + alpha e^background + eps): mixing in the linear domain of (normalised) log-mel.
    The eps is float32's, as the original (it also keeps log() finite)."""
    mixed = (1.0 - alpha) * x.exp() + alpha * background.exp()
    return torch.log(mixed + torch.finfo(torch.float32).eps)


class MixupInLogMel(nn.Module):
    """The original's MixupBYOLA: mix every example with a random earlier example kept in a FIFO memory bank,
    alpha = ratio * U(0, 1), by `log_mixup_exp` (the background sound is the earlier one).

    Defaults v1: ratio 0.4, 2048 examples in memory; v2: ratio 0.2, 512 (MIXUP_DEFAULTS). The bank is part of
    the state dict (extra state), so checkpoints restore it. Differences from the original, which runs per
    example: an example mixes only with earlier *batches* (the first batch passes unmixed), and with
    `update_bank=False` the batch is not stored (used for the first of the two views, so each batch enters the
    bank once rather than twice).
    """

    def __init__(self, ratio: float = 0.4, memory_size: int = 2048):
        super().__init__()
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"mixup ratio must be in [0, 1], got {ratio}")
        if memory_size < 1:
            raise ValueError(f"the memory bank needs room for at least one example, got {memory_size}")
        self.ratio, self.memory_size = ratio, memory_size
        self.bank: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, update_bank: bool = True) -> torch.Tensor:
        """x [B, 1, F, T] -> mixed x (same shape); then the batch joins the bank when `update_bank`."""
        batch = x.shape[0]
        alpha = _uniform(0.0, self.ratio, batch).view(batch, 1, 1, 1).to(x)
        mixed = x
        if self.bank is not None and self.bank.shape[1:] == x.shape[1:]:
            choice = torch.randint(self.bank.shape[0], (batch,))
            mixed = log_mixup_exp(x, self.bank[choice].to(x), alpha)
        if update_bank:
            self.remember(x)
        return mixed

    def remember(self, x: torch.Tensor) -> None:
        """Append the batch to the bank, keeping the newest `memory_size` examples."""
        stored = x.detach()
        if self.bank is not None and self.bank.shape[1:] == stored.shape[1:]:
            stored = torch.cat([self.bank.to(stored), stored])
        self.bank = stored[-self.memory_size :].clone()

    def get_extra_state(self) -> dict:
        return {"bank": None if self.bank is None else self.bank.cpu()}

    def set_extra_state(self, state: dict) -> None:
        self.bank = state["bank"]

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, memory_size={self.memory_size}"


def _crop_box(canvas: tuple[int, int], source: tuple[int, int], freq_scale: tuple[float, float],
              time_scale: tuple[float, float]) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random crop of the canvas: height = U(freq_scale) * F, width =
    U(time_scale) * T, both clipped to [1, canvas], at a uniformly random offset (as the original's get_params)."""
    height = min(max(int(float(_uniform(*freq_scale, 1)) * source[0]), 1), canvas[0])
    width = min(max(int(float(_uniform(*time_scale, 1)) * source[1]), 1), canvas[1])
    top = int(torch.randint(canvas[0] - height + 1, ())) if canvas[0] > height else 0
    left = int(torch.randint(canvas[1] - width + 1, ())) if canvas[1] > width else 0
    return top, left, height, width


class RandomResizeCrop(nn.Module):
    """The original's RandomResizeCrop: centre the log-mel on a zero canvas of (1.0 x F, 1.5 x T)
    (`virtual_crop_scale`), crop a random box of (U(0.6, 1.5) x F, U(0.6, 1.5) x T) (`freq_scale`, `time_scale`)
    and resize it back to F x T with bicubic interpolation (align_corners=True). Zero is the dataset mean after
    the pre-normalisation, so the canvas reads as average background. One box per example."""

    def __init__(self, virtual_crop_scale: tuple[float, float] = (1.0, 1.5),
                 freq_scale: tuple[float, float] = (0.6, 1.5), time_scale: tuple[float, float] = (0.6, 1.5)):
        super().__init__()
        if freq_scale[1] < 1.0 or time_scale[1] < 1.0:
            raise ValueError("the largest frequency and time scales must be >= 1 (as the original asserts)")
        self.virtual_crop_scale, self.freq_scale, self.time_scale = virtual_crop_scale, freq_scale, time_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, F, T] -> resized random crops, same shape."""
        bins, frames = x.shape[-2:]
        canvas_bins, canvas_frames = int(bins * self.virtual_crop_scale[0]), int(frames * self.virtual_crop_scale[1])
        canvas = x.new_zeros(x.shape[:-2] + (canvas_bins, canvas_frames))
        top, left = (canvas_bins - bins) // 2, (canvas_frames - frames) // 2
        canvas[..., top : top + bins, left : left + frames] = x
        crops = []
        for example in canvas:
            i, j, height, width = _crop_box((canvas_bins, canvas_frames), (bins, frames), self.freq_scale,
                                            self.time_scale)
            crop = example[None, :, i : i + height, j : j + width]
            crops.append(functional.interpolate(crop, size=(bins, frames), mode="bicubic", align_corners=True))
        return torch.cat(crops).to(x.dtype)

    def extra_repr(self) -> str:
        return (f"virtual_crop_scale={self.virtual_crop_scale}, freq_scale={self.freq_scale}, "
                f"time_scale={self.time_scale}")


class RandomLinearFader(nn.Module):
    """v2's RandomLinearFader: add a linear gain ramp over time to the log-mel, from head to tail with both ends
    drawn from gain * U(-1, 1) (default gain 1.0, i.e. up to +-1 in the natural-log domain). One ramp per example."""

    def __init__(self, gain: float = 1.0):
        super().__init__()
        self.gain = gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, F, T] -> x + ramp [B, 1, 1, T]."""
        batch, frames = x.shape[0], x.shape[-1]
        ends = _uniform(-self.gain, self.gain, 2 * batch).view(batch, 2)
        position = torch.linspace(0.0, 1.0, frames)
        ramp = ends[:, :1] + (ends[:, 1:] - ends[:, :1]) * position  # linspace(head, tail, T) per example
        return x + ramp.view(batch, 1, 1, frames).to(x)

    def extra_repr(self) -> str:
        return f"gain={self.gain}"


def normalize_batch(x: torch.Tensor) -> torch.Tensor:
    """The original's post-norm NormalizeBatch(axis=[0, 2, 3]): standardise per channel over the batch, bins and
    frames (one channel: two scalars for the whole batch of both views); the std is clamped at float eps."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    std = x.std(dim=(0, 2, 3), keepdim=True).clamp(min=torch.finfo(torch.float32).eps)
    return (x - mean) / std


class ByolAAugmentation(nn.Module):
    """Two post-normalised views of a pre-normalised log-mel batch: v1 mixup -> random resize crop; v2 adds the
    random linear fader. Register it for checkpointing: its state holds the mixup memory bank."""

    def __init__(self, version: int = 1, mixup_ratio: float | None = None, memory_size: int | None = None,
                 fader_gain: float = 1.0):
        super().__init__()
        if version not in MIXUP_DEFAULTS:
            raise ValueError(f"the BYOL-A augmentation chain is version 1 or 2, got {version}")
        defaults = MIXUP_DEFAULTS[version]
        self.version = version
        self.mixup = MixupInLogMel(defaults["ratio"] if mixup_ratio is None else mixup_ratio,
                                   int(defaults["memory_size"] if memory_size is None else memory_size))
        self.crop = RandomResizeCrop()
        self.fader = RandomLinearFader(fader_gain) if version == 2 else None

    def view(self, x: torch.Tensor, update_bank: bool) -> torch.Tensor:
        """One augmented view, before the post-normalisation."""
        view = self.crop(self.mixup(x, update_bank=update_bank))
        return self.fader(view) if self.fader is not None else view

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, 1, F, T] -> (view one, view two), normalised together as the original's training step."""
        views = torch.cat([self.view(x, update_bank=False), self.view(x, update_bank=True)])
        view_one, view_two = normalize_batch(views).chunk(2)
        return view_one, view_two


__all__ = [
    "MIXUP_DEFAULTS",
    "ByolAAugmentation",
    "MixupInLogMel",
    "RandomLinearFader",
    "RandomResizeCrop",
    "log_mixup_exp",
    "normalize_batch",
]
