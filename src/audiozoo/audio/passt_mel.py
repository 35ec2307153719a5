"""The evaluation-mode front end of PaSST / EfficientAT (`AugmentMelSTFT`), used by fPaSST and frame-MobileNet.

Pre-emphasis y[n] = x[n+1] - 0.97 x[n] (one sample shorter), centred STFT (reflect padding) with a 400-sample
hann window in a 512-point FFT, power, Kaldi mel filters (zero Nyquist column), log(max(x, 1e-7)),
then (x + 4.5) / 5. T = 1 + (N - 1) // hop. The window is periodic for fPaSST and symmetric for frame-MobileNet.
"""

from __future__ import annotations

import torch
from torch import nn

from .fbank import kaldi_mel_banks
from .melspec import centred_power_spectrogram


class PasstMelSpectrogram(nn.Module):
    """[B, N] waveforms -> [B, n_mels, T] normalised log-mel, as AugmentMelSTFT in eval mode (no augmentation)."""

    def __init__(
        self, sample_rate: int = 16000, n_mels: int = 128, n_fft: int = 512, win_length: int = 400,
        hop_length: int = 160, f_min: float = 0.0, f_max: float = 7000.0, preemphasis: float = 0.97,
        periodic_window: bool = True, log_floor: float = 1e-7, offset: float = 4.5, scale: float = 5.0,
    ):
        super().__init__()
        self.sample_rate, self.n_mels, self.n_fft = sample_rate, n_mels, n_fft
        self.win_length, self.hop_length = win_length, hop_length
        self.f_min, self.f_max, self.preemphasis = f_min, f_max, preemphasis
        self.periodic_window, self.log_floor, self.offset, self.scale = periodic_window, log_floor, offset, scale
        self.register_buffer("window", torch.empty(win_length), persistent=False)
        self.register_buffer("filters", torch.empty(n_mels, n_fft // 2 + 1), persistent=False)
        self.reset_buffers()

    @torch.no_grad()
    def reset_buffers(self) -> None:
        """(Re)compute window and filters (transformers refills non-persistent buffers after loading)."""
        device = self.window.device
        self.window.copy_(torch.hann_window(self.win_length, periodic=self.periodic_window).to(device))
        self.filters.copy_(kaldi_mel_banks(self.n_mels, self.n_fft, self.sample_rate, self.f_min, self.f_max).to(device))

    def num_frames(self, num_samples: int) -> int:
        return 1 + (num_samples - 1) // self.hop_length

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        if waveforms.dim() == 1:
            waveforms = waveforms.unsqueeze(0)
        emphasised = waveforms[:, 1:] - self.preemphasis * waveforms[:, :-1]
        power = centred_power_spectrogram(emphasised, None, self.n_fft, self.hop_length, self.win_length, self.window)
        mel = torch.matmul(self.filters, power)
        return mel.clamp_(min=self.log_floor).log_().add_(self.offset).div_(self.scale)  # in place: a fresh tensor


__all__ = ["PasstMelSpectrogram"]
