"""ASiT's front end: waveforms -> `input_values` [B, 1, n_mels, T] (validation and padding in the shared base)."""

from __future__ import annotations

import torch

from ...audio.fbank import KaldiFbank
from ...feature_extraction.sed_feature_extraction import SpectrogramFeatureExtractor


class AsitFeatureExtractor(SpectrogramFeatureExtractor):
    """ASiT: Kaldi fbank (hanning window, 128 bins, no 2**15 scaling) of each mean-removed clip,
    normalised with the AST AudioSet statistics, (x - mean) / (2 std)."""

    def __init__(self, sampling_rate: int = 16000, num_mel_bins: int = 128, window: str = "hanning",
                 mean: float = -4.2677393, std: float = 4.5689974, **kwargs):
        kwargs.pop("feature_size", None)
        kwargs.setdefault("min_samples", int(sampling_rate * 0.025))
        super().__init__(feature_size=num_mel_bins, sampling_rate=sampling_rate, **kwargs)
        self.num_mel_bins, self.window, self.mean, self.std = num_mel_bins, window, mean, std

    def build_transform(self) -> torch.nn.Module:
        return KaldiFbank(self.sampling_rate, self.num_mel_bins, window=self.window, htk_compat=True,
                          subtract_waveform_mean=True)

    def features(self, waveforms: torch.Tensor) -> torch.Tensor:
        return ((self.transform(waveforms) - self.mean) / (2 * self.std)).transpose(1, 2)


__all__ = ["AsitFeatureExtractor"]
