"""Batching of raw waveforms for the feature extractors: validation, padding, masks.

Every feature extractor of the package takes mono float waveforms at its own sampling rate. This module
turns whatever the caller passed (one array, a list of arrays or tensors, a 2-D batch) into one padded
float tensor plus per-item lengths (`prepare_batch`), or on CPU into the checked float32 clips themselves
(`prepare_waveforms`: the front ends compute clip by clip there, so the copy into one batch is not needed),
and refuses input that would give a silently wrong answer.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..runtime import check_device

ArrayLike = np.ndarray | torch.Tensor | Sequence[float]


def _as_tensor(item, index: int) -> torch.Tensor:
    if isinstance(item, torch.Tensor):
        tensor = item.detach()
    elif isinstance(item, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(item))
    elif isinstance(item, (list, tuple)) and all(isinstance(value, (int, float)) for value in item):
        tensor = torch.tensor(item, dtype=torch.float32)
    else:
        raise TypeError(f"waveform {index}: expected a numpy array or torch tensor, got {type(item).__name__}")
    if not torch.is_floating_point(tensor):
        raise TypeError(
            f"waveform {index}: expected floating-point samples in [-1, 1], got dtype {tensor.dtype}. "
            "Convert integer PCM first, e.g. audiozoo.audio.to_float32(array) (int16 is divided by 32768)."
        )
    return tensor


def split_batch(raw_audio) -> list[torch.Tensor]:
    """One waveform, a list of waveforms, or a 2-D [batch, samples] array -> list of 1-D tensors."""
    if isinstance(raw_audio, (np.ndarray, torch.Tensor)):
        if raw_audio.ndim == 1:
            return [_as_tensor(raw_audio, 0)]
        if raw_audio.ndim == 2:
            return [_as_tensor(row, index) for index, row in enumerate(raw_audio)]
        raise ValueError(
            f"expected a mono waveform [samples] or a batch [batch, samples], got an array of shape "
            f"{tuple(raw_audio.shape)}"
        )
    if isinstance(raw_audio, (list, tuple)):
        if len(raw_audio) == 0:
            raise ValueError("expected at least one waveform, got an empty list")
        if all(isinstance(value, (int, float)) for value in raw_audio):
            return [_as_tensor(list(raw_audio), 0)]
        items = [_as_tensor(item, index) for index, item in enumerate(raw_audio)]
        for index, item in enumerate(items):
            if item.ndim != 1:
                raise ValueError(
                    f"waveform {index}: expected a mono 1-D waveform, got shape {tuple(item.shape)}. "
                    "Down-mix multi-channel audio first (audiozoo.audio.to_mono)."
                )
        return items
    raise TypeError(f"expected waveform(s) as numpy arrays or torch tensors, got {type(raw_audio).__name__}")


def check_waveforms(
    waveforms: list[torch.Tensor], min_samples: int, sampling_rate: int, check_finite: bool = True
) -> None:
    """Refuse empty, too short or (unless `check_finite=False`) non-finite waveforms, naming the item and what
    was expected."""
    for index, waveform in enumerate(waveforms):
        if waveform.numel() == 0:
            raise ValueError(f"waveform {index} is empty")
        if waveform.numel() < min_samples:
            raise ValueError(
                f"waveform {index} has {waveform.numel()} samples ({waveform.numel() / sampling_rate:.4f} s); "
                f"the model needs at least {min_samples} samples ({min_samples / sampling_rate:.4f} s at "
                f"{sampling_rate} Hz). A 2-D array is read as [batch, samples]; down-mix stereo first."
            )
    if check_finite and not _sums_are_finite([waveform.sum() for waveform in waveforms]):
        check_finite_samples(waveforms)


def _sums_are_finite(sums) -> bool:
    """A sum is ~50x cheaper than isfinite() on every sample, and NaN/Inf always make it non-finite; a non-finite
    sum of finite samples (an overflow) only sends the caller to the exact scan."""
    sums = torch.stack(sums) if isinstance(sums, list) else sums
    return bool(torch.isfinite(sums).all())


def check_finite_samples(waveforms: list[torch.Tensor]) -> None:
    """The exact scan: refuse the first waveform with NaN/Inf samples, saying how many and where."""
    for index, waveform in enumerate(waveforms):
        finite = torch.isfinite(waveform)
        if not bool(finite.all()):
            bad = (~finite).nonzero().flatten()
            raise ValueError(
                f"waveform {index} has {bad.numel()} NaN/Inf samples (first at sample {int(bad[0])}); "
                "expected finite values in [-1, 1]"
            )


def pad_waveforms(
    waveforms: list[torch.Tensor], padding_value: float = 0.0, device: str | torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest item -> ([B, N] float32, [B] lengths)."""
    sizes = [waveform.numel() for waveform in waveforms]
    lengths = torch.tensor(sizes, dtype=torch.long)
    longest = max(sizes)
    if min(sizes) == longest and all(w.dtype == torch.float32 and w.device.type == "cpu" for w in waveforms):
        batch = torch.stack(waveforms)
    else:
        batch = torch.empty((len(waveforms), longest), dtype=torch.float32)
        for index, waveform in enumerate(waveforms):
            batch[index, : sizes[index]] = waveform  # copy_ casts to float32
            if sizes[index] < longest:
                batch[index, sizes[index] :] = padding_value
    if device is not None:
        batch, lengths = batch.to(device), lengths.to(device)
    return batch, lengths


def prepare_waveforms(raw_audio, min_samples: int, sampling_rate: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """What every feature extractor does first: `split_batch` and `check_waveforms` -> (1-D float32 CPU tensors,
    [B] lengths). Front ends that work clip by clip on CPU take these as they are: rows of a batch right-padded
    with zeros to the longest, without the copy into one [B, N] tensor."""
    waveforms = split_batch(raw_audio)
    check_waveforms(waveforms, min_samples, sampling_rate)
    clips = [waveform.to(device="cpu", dtype=torch.float32) for waveform in waveforms]
    return clips, torch.tensor([clip.numel() for clip in clips], dtype=torch.long)


def prepare_batch(
    raw_audio, min_samples: int, sampling_rate: int, padding_value: float = 0.0,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`prepare_waveforms`, then `pad_waveforms` -> ([B, N] float32 on `device`, [B] lengths)."""
    clips, _ = prepare_waveforms(raw_audio, min_samples, sampling_rate)
    return pad_waveforms(clips, padding_value, device)


def clip_by_clip(device: str | torch.device | None, padding_value: float = 0.0) -> bool:
    """Whether a front end takes `prepare_waveforms`' clips (CPU, zero padding) rather than a padded batch."""
    return padding_value == 0.0 and (device is None or torch.device(device).type == "cpu")


def prepare_input(raw_audio, min_samples: int, sampling_rate: int, padding_value: float = 0.0,
                  device: str | torch.device | None = None):
    """The clips as `prepare_waveforms` gives them where the front end works clip by clip on CPU with zero padding
    (no copy into one padded batch), else `prepare_batch`'s padded batch on `device`; with their [B] lengths.
    A device this machine lacks is a `DeviceUnavailableError` before any work (never a CPU fall-back)."""
    if device is not None:
        check_device(device)
    if clip_by_clip(device, padding_value):
        return prepare_waveforms(raw_audio, min_samples, sampling_rate)
    return prepare_batch(raw_audio, min_samples, sampling_rate, padding_value, device)


def _autocast_device_types() -> tuple[str, ...]:
    """The device types whose autocast state this torch can report (MPS autocast came after torch 2.4)."""
    kinds = []
    for kind in ("cpu", "cuda", "mps"):
        try:
            torch.is_autocast_enabled(kind)
        except (RuntimeError, TypeError, ValueError):
            continue
        kinds.append(kind)
    return tuple(kinds)


AUTOCAST_DEVICE_TYPES = _autocast_device_types()


def float32_front_end(method: Callable) -> Callable:
    """Run a feature extractor's method with torch.autocast off: the front ends compute in float32 as the originals
    did, even when the caller runs its model under autocast in the same block (`--dtype bfloat16` lowers only the
    model; under autocast the mel matrix products would run in bfloat16, ~0.5% off)."""

    @functools.wraps(method)
    def run(*args, **kwargs):
        active = [kind for kind in AUTOCAST_DEVICE_TYPES if torch.is_autocast_enabled(kind)]
        if not active:
            return method(*args, **kwargs)
        with contextlib.ExitStack() as stack:
            for kind in active:
                stack.enter_context(torch.autocast(device_type=kind, enabled=False))
            return method(*args, **kwargs)

    return run


def check_sampling_rate(given: int | None, expected: int, extractor: str) -> None:
    """A wrong rate is an error, never a silent wrong answer."""
    if given is not None and int(given) != int(expected):
        raise ValueError(
            f"{extractor} expects audio sampled at {expected} Hz, got sampling_rate={given}. Resample first "
            f"(audiozoo.audio.resample(array, {given}, {expected})), or use pipeline('audio-classification') "
            "or the audiozoo CLI, which resample."
        )
