"""ATST-Frame's front end: waveforms -> `input_values` [B, 1, n_mels, T] (validation and padding in the shared base)."""

from __future__ import annotations

import torch

from ...audio.melspec import LogMelSpectrogram, power_to_decibels
from ...feature_extraction.sed_feature_extraction import SpectrogramFeatureExtractor


class AtstFrameFeatureExtractor(SpectrogramFeatureExtractor):
    """ATST-Frame: mel power -> dB (floor: peak - top_db) -> clamp(-50, 80) -> min-max to about [-1, 1].

    `top_db_per_item=True` (default) takes the floor from each clip's own peak, so a clip's features never
    depend on its batch mates (what the original inference script gets, one clip at a time). False reproduces
    the original batched front end, whose floor is the peak of the WHOLE batch (torchaudio reads [B, mels, T]
    as channels of one spectrogram): the features of training/evaluation batches.
    """

    def __init__(self, sampling_rate: int = 16000, n_fft: int = 1024, hop_length: int = 160, n_mels: int = 64,
                 f_min: float = 60.0, f_max: float = 7800.0, top_db: float = 80.0, clamp_min: float = -50.0,
                 clamp_max: float = 80.0, minmax_low: float = -79.6482, minmax_high: float = 50.6842,
                 top_db_per_item: bool = True, **kwargs):
        kwargs.pop("feature_size", None)
        kwargs.setdefault("min_samples", n_fft // 2 + 1)
        super().__init__(feature_size=n_mels, sampling_rate=sampling_rate, **kwargs)
        self.n_fft, self.hop_length, self.n_mels, self.f_min, self.f_max = n_fft, hop_length, n_mels, f_min, f_max
        self.top_db, self.clamp_min, self.clamp_max = top_db, clamp_min, clamp_max
        self.minmax_low, self.minmax_high, self.top_db_per_item = minmax_low, minmax_high, top_db_per_item

    def build_transform(self) -> torch.nn.Module:
        return LogMelSpectrogram(self.sampling_rate, self.n_fft, self.n_fft, self.hop_length, self.f_min, self.f_max,
                                 self.n_mels)

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        power = self.transform.mel_power(waveforms)  # one clip at a time on CPU (LogMelSpectrogram does it)
        # in place on the fresh power tensor: the same operations in the same order, without the copies
        decibels = power_to_decibels(power, self.top_db, self.top_db_per_item, inplace=True)
        decibels = decibels.clamp_(self.clamp_min, self.clamp_max)
        return decibels.sub_(self.minmax_low).div_(self.minmax_high - self.minmax_low).mul_(2).sub_(1)


__all__ = ["AtstFrameFeatureExtractor"]
