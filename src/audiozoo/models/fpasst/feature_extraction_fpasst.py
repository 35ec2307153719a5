"""PaSST's AugmentMelSTFT front end (fPaSST; frame-MobileNet with a symmetric window): waveforms -> `input_values` [B, 1, n_mels, T] (validation and padding in the shared base)."""

from __future__ import annotations

import torch

from ...audio.passt_mel import PasstMelSpectrogram
from ...feature_extraction.sed_feature_extraction import SpectrogramFeatureExtractor


class PasstMelFeatureExtractor(SpectrogramFeatureExtractor):
    """AugmentMelSTFT in eval mode: fPaSST (`periodic_window=True`) and frame-MobileNet (False)."""

    def __init__(self, sampling_rate: int = 16000, n_mels: int = 128, n_fft: int = 512, win_length: int = 400,
                 hop_length: int = 160, f_min: float = 0.0, f_max: float = 7000.0, preemphasis: float = 0.97,
                 periodic_window: bool = True, **kwargs):
        kwargs.pop("feature_size", None)
        kwargs.setdefault("min_samples", n_fft // 2 + 2)
        super().__init__(feature_size=n_mels, sampling_rate=sampling_rate, **kwargs)
        self.n_mels, self.n_fft, self.win_length, self.hop_length = n_mels, n_fft, win_length, hop_length
        self.f_min, self.f_max, self.preemphasis, self.periodic_window = f_min, f_max, preemphasis, periodic_window

    def build_transform(self) -> torch.nn.Module:
        return PasstMelSpectrogram(self.sampling_rate, self.n_mels, self.n_fft, self.win_length, self.hop_length,
                                   self.f_min, self.f_max, self.preemphasis, self.periodic_window)

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.per_row(self.transform, waveforms)


__all__ = ["PasstMelFeatureExtractor"]
