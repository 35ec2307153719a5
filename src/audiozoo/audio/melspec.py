"""Log-mel spectrograms in batched torch for the non-Kaldi front ends (BYOL-A now; M2D, fPaSST, ... next).

The numbers of `torchaudio.transforms.MelSpectrogram` (HTK or Slaney mel scale, optional Slaney area norm,
periodic hann window, centred frames with reflect padding, power spectrum), then `log(x + offset)`.
Each clip is reflect-padded on its own (then zero-padded to the batch's length), so a padded batch gives every
clip exactly the frames it gets alone: T_i = 1 + len_i // hop. On CPU the clips are transformed one at a time
(faster than one batched STFT), on GPU in one pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .fbank import num_rows_and_samples, row_samples, stack_rows


def _hz_to_mel(frequency: float, scale: str) -> float:
    if scale == "htk":
        return 2595.0 * math.log10(1.0 + frequency / 700.0)
    # Slaney: linear below 1 kHz, logarithmic above
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    if frequency < min_log_hz:
        return frequency / f_sp
    return min_log_hz / f_sp + math.log(frequency / min_log_hz) / (math.log(6.4) / 27.0)


def _mel_to_hz(mels: torch.Tensor, scale: str) -> torch.Tensor:
    if scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    frequencies = f_sp * mels
    return torch.where(mels >= min_log_mel, min_log_hz * torch.exp(logstep * (mels - min_log_mel)), frequencies)


def mel_filterbank(
    num_frequencies: int, f_min: float, f_max: float, n_mels: int, sample_rate: int,
    norm: str | None = None, mel_scale: str = "htk",
) -> torch.Tensor:
    """Triangular mel filters [num_frequencies, n_mels] in float32, as torchaudio's `melscale_fbanks`."""
    if mel_scale not in ("htk", "slaney"):
        raise ValueError(f"mel_scale must be 'htk' or 'slaney', got {mel_scale!r}")
    if norm not in (None, "slaney"):
        raise ValueError(f"norm must be None or 'slaney', got {norm!r}")
    all_frequencies = torch.linspace(0, sample_rate // 2, num_frequencies)
    mel_points = torch.linspace(_hz_to_mel(f_min, mel_scale), _hz_to_mel(f_max, mel_scale), n_mels + 2)
    frequency_points = _mel_to_hz(mel_points, mel_scale)
    differences = frequency_points[1:] - frequency_points[:-1]
    slopes = frequency_points.unsqueeze(0) - all_frequencies.unsqueeze(1)
    down = -slopes[:, :-2] / differences[:-1]
    up = slopes[:, 2:] / differences[1:]
    banks = torch.max(torch.zeros(1), torch.min(down, up))
    if norm == "slaney":
        banks = banks * (2.0 / (frequency_points[2 : n_mels + 2] - frequency_points[:n_mels])).unsqueeze(0)
    return banks


class LogMelSpectrogram(nn.Module):
    """[B, N] waveforms (+ lengths) -> [B, n_mels, T] `log(mel + log_offset)`, T = 1 + N // hop_length.

    Args:
        sample_rate, n_fft, win_length, hop_length, f_min, f_max, n_mels: as torchaudio's MelSpectrogram.
        mel_scale: "htk" (torchaudio's default) or "slaney"; norm: None or "slaney" (area normalisation).
        log_offset: added before the natural log (float32 epsilon for BYOL-A).
    """

    def __init__(
        self, sample_rate: int = 16000, n_fft: int = 1024, win_length: int | None = None, hop_length: int = 160,
        f_min: float = 0.0, f_max: float | None = None, n_mels: int = 64, mel_scale: str = "htk",
        norm: str | None = None, log_offset: float = torch.finfo(torch.float32).eps,
    ):
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length, self.n_mels = sample_rate, n_fft, hop_length, n_mels
        self.win_length = win_length or n_fft
        self.f_min, self.f_max = f_min, (f_max if f_max is not None else sample_rate / 2)
        self.mel_scale, self.norm, self.log_offset = mel_scale, norm, log_offset
        self.register_buffer("window", torch.empty(self.win_length), persistent=False)
        self.register_buffer("filters", torch.empty(n_fft // 2 + 1, n_mels), persistent=False)
        self.reset_buffers()

    @torch.no_grad()
    def reset_buffers(self) -> None:
        """(Re)compute the window and filters (transformers refills non-persistent buffers with garbage)."""
        device = self.window.device
        self.window.copy_(torch.hann_window(self.win_length, periodic=True).to(device))
        banks = mel_filterbank(self.n_fft // 2 + 1, self.f_min, self.f_max, self.n_mels, self.sample_rate,
                               self.norm, self.mel_scale)
        self.filters.copy_(banks.to(device))

    def num_frames(self, num_samples):
        return num_samples // self.hop_length + 1

    def mel_power(
        self, waveforms: torch.Tensor | Sequence[torch.Tensor], lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[B, N] waveforms (+ valid lengths) -> [B, n_mels, T] mel power, before the log. A list of 1-D waveforms
        is read as such a batch, right-padded with zeros to the longest.

        On CPU one clip at a time: a whole batch's spectra overflow the cache (measured 3-4x slower batched on
        32-100 x 10 s). Each row is computed exactly as in a batch (its own reflect padding, then the batch's
        zero padding), so the result is the same.
        """
        return self._rows(self._mel_power, waveforms, lengths)

    def forward(
        self, waveforms: torch.Tensor | Sequence[torch.Tensor], lengths: torch.Tensor | None = None,
        normalize: tuple[float, float] | None = None,
    ) -> torch.Tensor:
        """`log(mel_power + log_offset)`, then `(x - mean) / std` with `normalize=(mean, std)`; on CPU both are
        done clip by clip while each clip is in cache (the same operations as on the whole result)."""

        def log_mel(rows: torch.Tensor, row_lengths: torch.Tensor | None) -> torch.Tensor:
            output = self._mel_power(rows, row_lengths).add_(self.log_offset).log_()
            return output if normalize is None else output.sub_(normalize[0]).div_(normalize[1])

        return self._rows(log_mel, waveforms, lengths)

    def _rows(self, function, waveforms: torch.Tensor | Sequence[torch.Tensor], lengths: torch.Tensor | None):
        if isinstance(waveforms, torch.Tensor) and waveforms.dim() == 1:
            waveforms = waveforms.unsqueeze(0)
        if not isinstance(waveforms, torch.Tensor) and any(waveform.device.type != "cpu" for waveform in waveforms):
            waveforms = stack_rows(waveforms)
        if isinstance(waveforms, torch.Tensor) and (waveforms.device.type != "cpu" or waveforms.shape[0] == 1):
            return function(waveforms, lengths)
        batch, num_samples = num_rows_and_samples(waveforms)
        output = self.filters.new_empty(batch, self.n_mels, self.num_frames(num_samples))
        for index in range(batch):
            row = row_samples(waveforms, slice(index, index + 1), 0, num_samples)
            output[index] = function(row, None if lengths is None else lengths[index : index + 1])[0]
        return output

    def _mel_power(self, waveforms: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        power = centred_power_spectrogram(waveforms, lengths, self.n_fft, self.hop_length, self.win_length, self.window)
        return torch.matmul(power.transpose(-1, -2), self.filters).transpose(-1, -2)


def centred_power_spectrogram(
    waveforms: torch.Tensor, lengths: torch.Tensor | None, n_fft: int, hop_length: int, win_length: int,
    window: torch.Tensor,
) -> torch.Tensor:
    """|STFT|^2 [B, n_fft // 2 + 1, T] of centred frames, each clip reflect-padded on its own (torch.stft(center=True)).

    With `lengths`, clip i is padded at its own end, so it gets exactly the frames it gets alone
    (T_i = 1 + len_i // hop; later frames are padding).
    """
    if waveforms.dim() == 1:
        waveforms = waveforms.unsqueeze(0)
    batch, samples = waveforms.shape
    half = n_fft // 2
    if lengths is not None and bool((lengths == samples).all()):
        lengths = None  # no clip is padded: the same frames without the copy into a zero-padded buffer
    if lengths is None:
        if samples <= half:
            raise ValueError(f"clips must be longer than {half} samples for reflect padding, got {samples}")
        padded = nn.functional.pad(waveforms.unsqueeze(1), (half, half), mode="reflect").squeeze(1)
    else:
        if int(lengths.min()) <= half:
            raise ValueError(f"clips must be longer than {half} samples for reflect padding, got {int(lengths.min())}")
        padded = waveforms.new_zeros(batch, samples + 2 * half)
        for index, length in enumerate(lengths.tolist()):  # padding only: the transform below is batched
            clip = waveforms[index, :length].reshape(1, 1, -1)
            padded[index, : length + 2 * half] = nn.functional.pad(clip, (half, half), mode="reflect").reshape(-1)
    spectrum = torch.stft(
        padded, n_fft, hop_length=hop_length, win_length=win_length, window=window, center=False, return_complex=True,
    )
    return spectrum.real.square() + spectrum.imag.square()


def power_to_decibels(
    power: torch.Tensor, top_db: float | None = 80.0, per_item: bool = True, inplace: bool = False
) -> torch.Tensor:
    """10 log10(max(power, 1e-10)), floored at (max - top_db) as torchaudio's AmplitudeToDB(stype="power").

    `per_item=True` takes the max per clip ([B, ...] row); False takes it over the whole tensor, which is what
    torchaudio does for a [B, n_mels, T] batch (it reads B as channels of one spectrogram). `inplace=True`
    overwrites `power` (same operations, no copies).
    """
    if inplace:
        decibels = power.clamp_(min=1e-10).log10_().mul_(10.0)
    else:
        decibels = 10.0 * torch.log10(power.clamp(min=1e-10))
    if top_db is None:
        return decibels
    if per_item:
        peak = decibels.reshape(decibels.shape[0], -1).amax(dim=1).reshape((-1,) + (1,) * (decibels.dim() - 1))
    else:
        peak = decibels.amax()
    return decibels.clamp_(min=peak - top_db) if inplace else torch.max(decibels, peak - top_db)
