"""M2D's front end: waveforms -> `input_values` [B, 1, n_mels, T] (validation and padding in the shared base)."""

from __future__ import annotations

import torch

from ...audio.melspec import LogMelSpectrogram
from ...feature_extraction.sed_feature_extraction import SpectrogramFeatureExtractor


class M2dFeatureExtractor(SpectrogramFeatureExtractor):
    """M2D: Slaney mel with area norm (80 bins, 50-8000 Hz, 400/160), log(x + eps), (x - mean) / std.

    The statistics are the constants the PretrainedSED wrapper hard-codes (-7.1, 4.2), not the checkpoint's.
    """

    PATCH_FRAMES = 16  # the model's patches are 16 frames wide

    def __init__(self, sampling_rate: int = 16000, n_fft: int = 400, hop_length: int = 160, n_mels: int = 80,
                 f_min: float = 50.0, f_max: float = 8000.0, mean: float = -7.1, std: float = 4.2, **kwargs):
        kwargs.pop("feature_size", None)
        # one 16 x 16 patch: 16 centred frames (0.15 s), and more than n_fft // 2 samples for the reflect padding
        kwargs.setdefault("min_samples", max(n_fft // 2 + 1, (self.PATCH_FRAMES - 1) * hop_length))
        super().__init__(feature_size=n_mels, sampling_rate=sampling_rate, **kwargs)
        self.n_fft, self.hop_length, self.n_mels, self.f_min, self.f_max = n_fft, hop_length, n_mels, f_min, f_max
        self.mean, self.std = mean, std

    @property
    def minimum_samples(self) -> int:
        """One patch of frames (folders saved with the older reflect-padding-only `min_samples` get this too)."""
        return max(self.min_samples, self.n_fft // 2 + 1, (self.PATCH_FRAMES - 1) * self.hop_length)

    def build_transform(self) -> torch.nn.Module:
        return LogMelSpectrogram(self.sampling_rate, self.n_fft, self.n_fft, self.hop_length, self.f_min, self.f_max,
                                 self.n_mels, mel_scale="slaney", norm="slaney")

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        # normalised inside the transform, clip by clip while each is in cache (the same operations as afterwards)
        return self.transform(waveforms, normalize=(self.mean, self.std))


__all__ = ["M2dFeatureExtractor"]
